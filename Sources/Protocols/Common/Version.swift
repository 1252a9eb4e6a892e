// The version every run records (`code_version`) and every log names.

/// simsiam-bench's version, recorded with every run and checkpoint.
public let codeVersion = "0.1.0"
