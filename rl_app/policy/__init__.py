"""The BERT choice policy: encoder and tokenizer loading, the choice model, RLlib RLModules."""
