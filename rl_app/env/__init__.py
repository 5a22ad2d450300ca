"""The environments over the shop (:mod:`rl_app.shop`): the text env, its candidate actions,
the observation layouts and the gymnasium env."""
