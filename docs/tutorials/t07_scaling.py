# %% [markdown]
# # t07_scaling
# stub
