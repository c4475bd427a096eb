/* Exact dense linear assignment for minibatch optimal transport: an auction with epsilon scaling.
 *
 * solve(cost, n, vector=True) -> bytes holding n int64: row i is assigned column perm[i].
 *
 * cost is any C-contiguous buffer of n*n float64 values (finite). The solver works on integers:
 * the costs are shifted to start at 0, scaled so the largest is 2^44 (fewer bits for very large
 * n, so nothing can overflow) and rounded, then multiplied by n + 1. On integer costs the auction
 * ends with an optimal assignment once its bid increment epsilon reaches 1 while costs are
 * multiples of n + 1 (Bertsekas' n-epsilon bound: the total is within n * epsilon < n + 1 of the
 * optimum, and the only integer-cost total in that range is the optimum). Relative to the float
 * costs the result is optimal up to the rounding, at most n * range * 2^-44 in total.
 *
 * Why an auction: on squared Euclidean costs between two point clouds (the minibatch OT case)
 * shortest-augmenting-path solvers meet long augmenting paths and many near-ties; the auction with
 * epsilon scaling solves a 256 x 256 batch several times faster than the network simplex
 * (bench/toy_suite.py section 2c measures it). Each bid scans one cost row; that scan is the hot
 * loop and has an AVX2 version.
 *
 * The GIL is released while solving.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SL_X86 1
#include <immintrin.h>
#else
#define SL_X86 0
#endif

#define ALPHA 8 /* epsilon shrinks by this factor per scaling phase */

/* The inner loop of every bid: the lowest and second-lowest of row[j] + price[j] over j, and the
 * first j attaining the lowest. The AVX2 version (8 lanes, chosen at run time) gives exactly the
 * same three numbers as the scalar one, so results do not depend on the CPU. */
static void scan_scalar(const int64_t *row, const int64_t *price, int64_t n, int64_t *ob, int64_t *os, int64_t *oj) {
    int64_t best = INT64_MAX, second = INT64_MAX, jb = 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t v = row[j] + price[j];
        if (v < second) { if (v < best) { second = best; best = v; jb = j; } else second = v; }
    }
    *ob = best; *os = second; *oj = jb;
}
/* fold lane (m1, m2, ix) into the running (best, second, jb) */
static inline void fold(int64_t m1, int64_t m2, int64_t ix, int64_t *best, int64_t *second, int64_t *jb) {
    if (m1 < *best || (m1 == *best && ix < *jb)) {
        int64_t old = *best;
        *second = old < *second ? old : *second;
        *best = m1; *jb = ix;
    } else if (m1 < *second) *second = m1;
    if (m2 < *second) *second = m2;
}
#if SL_X86
__attribute__((target("avx2")))
static void scan_avx2(const int64_t *row, const int64_t *price, int64_t n, int64_t *ob, int64_t *os, int64_t *oj) {
    __m256i a1 = _mm256_set1_epi64x(INT64_MAX), a2 = a1, b1 = a1, b2 = a1;
    __m256i ai = _mm256_setzero_si256(), bi = ai;
    __m256i ia = _mm256_setr_epi64x(0, 1, 2, 3), ib = _mm256_setr_epi64x(4, 5, 6, 7), eight = _mm256_set1_epi64x(8);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i va = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(row + j)), _mm256_loadu_si256((const __m256i *)(price + j)));
        __m256i vb = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(row + j + 4)), _mm256_loadu_si256((const __m256i *)(price + j + 4)));
        __m256i lta = _mm256_cmpgt_epi64(a1, va), ltb = _mm256_cmpgt_epi64(b1, vb);
        __m256i ha = _mm256_blendv_epi8(va, a1, lta), hb = _mm256_blendv_epi8(vb, b1, ltb);
        a2 = _mm256_blendv_epi8(a2, ha, _mm256_cmpgt_epi64(a2, ha));
        b2 = _mm256_blendv_epi8(b2, hb, _mm256_cmpgt_epi64(b2, hb));
        a1 = _mm256_blendv_epi8(a1, va, lta); b1 = _mm256_blendv_epi8(b1, vb, ltb);
        ai = _mm256_blendv_epi8(ai, ia, lta); bi = _mm256_blendv_epi8(bi, ib, ltb);
        ia = _mm256_add_epi64(ia, eight); ib = _mm256_add_epi64(ib, eight);
    }
    int64_t m1[8], m2[8], ix[8];
    _mm256_storeu_si256((__m256i *)m1, a1); _mm256_storeu_si256((__m256i *)(m1 + 4), b1);
    _mm256_storeu_si256((__m256i *)m2, a2); _mm256_storeu_si256((__m256i *)(m2 + 4), b2);
    _mm256_storeu_si256((__m256i *)ix, ai); _mm256_storeu_si256((__m256i *)(ix + 4), bi);
    int64_t best = INT64_MAX, second = INT64_MAX, jb = 0;
    for (int l = 0; l < 8; l++) fold(m1[l], m2[l], ix[l], &best, &second, &jb);
    for (; j < n; j++) fold(row[j] + price[j], INT64_MAX, j, &best, &second, &jb);
    *ob = best; *os = second; *oj = jb;
}
#endif

typedef void (*scan_fn)(const int64_t *, const int64_t *, int64_t, int64_t *, int64_t *, int64_t *);

static scan_fn pick_scan(int vector) {
#if SL_X86
    if (vector && __builtin_cpu_supports("avx2")) return scan_avx2;
#endif
    (void)vector;
    return scan_scalar;
}

/* Forward auction, Gauss-Seidel (one bidder at a time). cost: n*n integers >= 0; owner, queue,
 * price: scratch of n each. Returns row_to_col. */
static void auction(const int64_t *cost, int64_t n, int64_t cmax, int64_t *row_to_col, int64_t *owner,
                    int64_t *queue, int64_t *price, scan_fn scan) {
    for (int64_t j = 0; j < n; j++) price[j] = 0;
    int64_t eps = cmax / ALPHA;
    if (eps < 1) eps = 1;
    for (;;) {
        int64_t pmin = INT64_MAX;
        for (int64_t j = 0; j < n; j++) if (price[j] < pmin) pmin = price[j];
        for (int64_t j = 0; j < n; j++) { price[j] -= pmin; owner[j] = -1; } /* keeps prices small */
        for (int64_t i = 0; i < n; i++) { row_to_col[i] = -1; queue[i] = i; }
        int64_t head = 0, tail = 0, waiting = n; /* circular queue of unassigned rows */
        while (waiting > 0) {
            int64_t i = queue[head];
            head = head + 1 == n ? 0 : head + 1;
            waiting--;
            int64_t best, second, jbest; /* lowest cost + price, the runner-up, where the lowest is */
            scan(cost + i * n, price, n, &best, &second, &jbest);
            /* the bid: raise the price until the runner-up is as good, plus eps */
            price[jbest] += (second - best) + eps;
            int64_t previous = owner[jbest];
            owner[jbest] = i;
            row_to_col[i] = jbest;
            if (previous >= 0) {
                row_to_col[previous] = -1;
                queue[tail] = previous;
                tail = tail + 1 == n ? 0 : tail + 1;
                waiting++;
            }
        }
        if (eps == 1) return;
        eps /= ALPHA;
        if (eps < 1) eps = 1;
    }
}

static PyObject *solve(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t n;
    int vector = 1;
    if (!PyArg_ParseTuple(args, "y*n|p", &view, &n, &vector)) return NULL;
    if (n < 1 || view.len != (Py_ssize_t)(n * n * (Py_ssize_t)sizeof(double))) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "cost must hold n*n float64 values for n >= 1, got %zd bytes for n=%zd",
                            view.len, n);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL) { PyBuffer_Release(&view); return NULL; }
    int64_t *perm = (int64_t *)PyBytes_AS_STRING(out);
    if (n == 1) { perm[0] = 0; PyBuffer_Release(&view); return out; }

    const double *c = (const double *)view.buf;
    int64_t *icost = malloc((size_t)n * (size_t)n * sizeof(int64_t));
    int64_t *scratch = malloc(3 * (size_t)n * sizeof(int64_t));
    if (icost == NULL || scratch == NULL) {
        free(icost); free(scratch); PyBuffer_Release(&view); Py_DECREF(out);
        return PyErr_NoMemory();
    }
    int finite = 1;
    Py_BEGIN_ALLOW_THREADS
    double lo = INFINITY, hi = -INFINITY;
    for (Py_ssize_t k = 0; k < n * n; k++) {
        double v = c[k];
        if (!isfinite(v)) { finite = 0; break; }
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    if (finite) {
        double top = ldexp(1.0, 56) / (double)(n + 1); /* largest scaled cost: top * (n + 1) <= 2^56 */
        if (top > ldexp(1.0, 44)) top = ldexp(1.0, 44);
        double scale = hi > lo ? top / (hi - lo) : 0.0;
        int64_t mult = (int64_t)n + 1, cmax = 0;
        for (Py_ssize_t k = 0; k < n * n; k++) {
            icost[k] = (int64_t)llround((c[k] - lo) * scale) * mult;
            if (icost[k] > cmax) cmax = icost[k];
        }
        auction(icost, n, cmax, perm, scratch, scratch + n, scratch + 2 * n, pick_scan(vector));
    }
    Py_END_ALLOW_THREADS
    free(icost);
    free(scratch);
    PyBuffer_Release(&view);
    if (!finite) {
        Py_DECREF(out);
        return PyErr_Format(PyExc_ValueError, "cost must be finite (it holds NaN or infinity)");
    }
    return out;
}

static PyMethodDef methods[] = {
    {"solve", solve, METH_VARARGS,
     "solve(cost, n, vector=True) -> bytes of n int64: an optimal assignment row -> column of the n x n "
     "float64 cost matrix (C order). vector=False forces the scalar inner loop (same result)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_assignment",
                                    "Exact dense linear assignment (auction with epsilon scaling).", -1, methods};

PyMODINIT_FUNC PyInit__assignment(void) { return PyModule_Create(&module); }
