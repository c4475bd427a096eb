"""HTTP routes: pages (GET), element actions (POST), Build-It, progress export/import, simulations,
health. What they share (the app's context, the learner, same-origin) is in web/deps.py."""
