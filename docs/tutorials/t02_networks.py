# %% [markdown]
# # t02_networks
# stub
