"""The one error type the tokenizer package raises for bad input it can explain."""


class TokenizerError(ValueError):
    """Bad training input, bad arguments, or a `tokenizer.json` we cannot read."""
