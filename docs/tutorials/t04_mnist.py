# %% [markdown]
# # t04_mnist
# stub
