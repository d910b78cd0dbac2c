"""The drift job: compare a model's recent predictions with its reference sample.

Reads both from the prediction store, runs Evidently's `DataDriftPreset`, normalises the
result, saves the report and writes the verdict into the ModelMonitor's status. The operator
never imports this package (it pulls in Evidently and pandas).
"""
