# %% [markdown]
# # t06_zoo
# stub
