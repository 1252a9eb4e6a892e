// `--feature-cache DIR` / `--no-feature-cache`, shared by the evaluators that extract frozen features.
import ArgumentParser
import Foundation

struct FeatureCacheOptions: ParsableArguments {
  @Option(help: ArgumentHelp("Where extracted features are cached (one checksummed file per checkpoint, data, layer "
                               + "and transform; reused by re-runs and the low-shot sweep).", valueName: "dir"))
  var featureCache: String = "work_dirs/feature_cache"

  @Flag(help: "Extract features in memory only; read and write no cache.")
  var noFeatureCache = false

  /// The cache directory a request takes (nil with --no-feature-cache).
  var directory: URL? { noFeatureCache ? nil : URL(fileURLWithPath: featureCache) }
}
