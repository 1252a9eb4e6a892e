// SHA256 moved to Support (OpenSSL-backed, issue 13). This alias keeps the files that still find it through
// Datasets compiling (the pretraining dataset, the evaluation image sources and the CLI, which other work is moving
// between targets); files that import Support see Support.SHA256 itself. Delete it once they import Support.
import Support

public typealias SHA256 = Support.SHA256
