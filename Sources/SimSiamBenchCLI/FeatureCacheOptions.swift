// `--feature-cache DIR` / `--no-feature-cache`, shared by the evaluators that extract frozen features.
import ArgumentParser
import Foundation
import Evaluation

struct FeatureCacheOptions: ParsableArguments {
  @Option(help: ArgumentHelp("Where extracted features are cached (one checksummed file per checkpoint, data, layer "
                               + "and transform; reused by re-runs and the low-shot sweep).", valueName: "dir"))
  var featureCache: String = "work_dirs/feature_cache"

  @Flag(help: "Extract features in memory only; read and write no cache.")
  var noFeatureCache = false

  /// The cache, or nil with --no-feature-cache. Corrupt files are reported to `log` (and rebuilt).
  func open(log: LogFile? = nil) throws -> FeatureCache? {
    if noFeatureCache { return nil }
    do {
      return try FeatureCache(directory: URL(fileURLWithPath: featureCache)) { warning in
        if let log { log.write("warning: \(warning)") } else {
          FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
      }
    } catch {
      throw ValidationError("Cannot use the feature cache \(featureCache): \(error). Choose another folder with "
                              + "--feature-cache DIR, or run with --no-feature-cache.")
    }
  }
}
