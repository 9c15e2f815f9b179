# %% [markdown]
# # t08_peers
# stub
