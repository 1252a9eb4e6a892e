// The support layer: what every other target may use and that knows nothing of tensors, models or protocols —
// hashing (OpenSSL), inflate (zlib), atomic file writes, the work queue, YAML config loading, typed identities.
