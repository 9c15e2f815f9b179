# %% [markdown]
# # t05_dirichlet_folders
# stub
