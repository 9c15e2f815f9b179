# %% [markdown]
# # t03_anomaly
# stub
