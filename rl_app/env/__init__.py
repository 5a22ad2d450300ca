"""The WebShop text shop: catalogue, goals, search, pages, reward, gymnasium env, agents."""
