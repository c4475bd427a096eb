/* Exact dense linear assignment for minibatch optimal transport: an auction with epsilon scaling.
 *
 * solve(cost, n) -> bytes holding n int64: row i is assigned column perm[i].
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
 * (bench/toy_suite.py section 2c measures it).
 *
 * The GIL is released while solving.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define ALPHA 8 /* epsilon shrinks by this factor per scaling phase */

/* Forward auction, Gauss-Seidel (one bidder at a time). cost: n*n integers >= 0; owner, queue,
 * price: scratch of n each. Returns row_to_col. */
static void auction(const int64_t *cost, int64_t n, int64_t cmax, int64_t *row_to_col, int64_t *owner,
                    int64_t *queue, int64_t *price) {
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
            const int64_t *row = cost + i * n;
            int64_t best = INT64_MAX, second = INT64_MAX, jbest = 0; /* lowest cost + price, runner-up */
            for (int64_t j = 0; j < n; j++) {
                int64_t v = row[j] + price[j];
                if (v < second) {
                    if (v < best) { second = best; best = v; jbest = j; }
                    else second = v;
                }
            }
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
    if (!PyArg_ParseTuple(args, "y*n", &view, &n)) return NULL;
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
        auction(icost, n, cmax, perm, scratch, scratch + n, scratch + 2 * n);
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
     "solve(cost, n) -> bytes of n int64: an optimal assignment row -> column of the n x n float64 cost "
     "matrix (C order)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_assignment",
                                    "Exact dense linear assignment (auction with epsilon scaling).", -1, methods};

PyMODINIT_FUNC PyInit__assignment(void) { return PyModule_Create(&module); }
