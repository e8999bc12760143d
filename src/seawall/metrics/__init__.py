"""What ``seawall serve`` counts, summed over its workers: the verdict history's feed and
Prometheus ``/metrics``.

prom.py      the Prometheus metrics of one worker (prometheus-client in multiprocess mode:
             each worker writes its own files under one folder, a scrape sums them), the
             folder's preparation by the supervisor, and the exposition
recorder.py  the Service observer: each verdict goes into a queue, written to the verdict
             history (``seawall.store.verdicts``) and counted in batches, off the reply's path
routes.py    ``GET /metrics`` on the HTTP listener, with the gauges read at scrape time
             (campaigns from the tracker, zombie cases by state)
"""
