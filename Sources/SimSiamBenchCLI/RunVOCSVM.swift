// `simsiam-bench run voc-svm`: options → `VOCSVMRequest`; the protocol lives in Sources/Protocols/VOCSVM.
import ArgumentParser
import Distributed
import Evaluation
import Foundation
import Protocols

struct RunVOCSVM: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "voc-svm",
    abstract: "VOC07 linear SVMs per layer (feature1–5) and low-shot SVMs (k = 1 … 96).",
    discussion: """
      Extracts feature1…feature5 of the checkpoint's backbone (eval mode; Resize 256 → squash 224; MMSelfSup's \
      AvgPool2d kernels giving 9216/9216/8192/9216/8192 dims for ResNet-50). For other input sizes (--image-size, \
      e.g. 32 for CIFAR-stem backbones, the default for them) each stage is pooled adaptively to the same grids \
      12/6/4/3/2; the pooling rule is stored with the scores. Then per layer and class: liblinear L2R_L2LOSS_SVC_DUAL \
      (weights +1:2, −1:1, bias 1, eps 1e-4) on x/(‖x‖+1e-5); the cost (19 by default) is chosen by 3-fold \
      stratified CV with scikit-learn's average precision; test AP is the all-point AP of MMSelfSup's \
      svm_helper.calculate_ap. Difficult images are negatives in training and excluded at test, as in the \
      reference. --low-shot adds k positives + (classes−1)·k negatives per class (non-difficult images), 5 seeded \
      samples per k (or --low-shot-samples), the cost with the best mean test mAP per k. \
      Finished units are journaled in --work-dir; rerunning the same command resumes.       Every setting is a key of the config (configs/benchmarks/voc07/svm_voc07.yaml; --config FILE,       --set key=value); the flags below are shortcuts for the common keys.
      """)

  @OptionGroup var common: CommonOptions

  @Option(help: "The checkpoint (.pth or .safetensors); its backbone architecture is detected.")
  var checkpoint: String?

  @Option(help: "A VOC year directory, e.g. VOCdevkit/VOC2007 (ImageSets/Main with <class>_trainval/test lists).")
  var data: String?

  @Option(help: ArgumentHelp(
    "Run the SVMs on features already extracted, instead of --checkpoint and --data.",
    discussion: "A directory in the layout --export-features writes: classes.txt, trainval_labels.npy and "
      + "test_labels.npy (int32 [images, classes]; 1, 0, -1 = difficult), trainval_<layer>.npy and "
      + "test_<layer>.npy (float32 or float64 [images, dim], not normalised)."))
  var features: String?

  @Option(help: "A YAML config (configs/benchmarks/voc07/…); default: the protocol's defaults for the backbone.")
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (dotted, repeatable; wins over the "
                                                        + "flags).", valueName: "key=value"))
  var overrides: [String] = []

  @OptionGroup var layoutOptions: LayoutOptions

  @OptionGroup var featureCacheOptions: FeatureCacheOptions

  @Flag(help: "Load the backbone even if some tensors are missing (they keep their random initial values).")
  var allowMissing = false

  @Flag(help: "Also run the low-shot SVMs (k = 1, 2, 4, 8, 16, 32, 64, 96; 5 samples).")
  var lowShot = false

  @Option(help: "Read low-shot samples train_targets_sample{1..5}_k{k}.npy from this directory (implies --low-shot).")
  var lowShotSamples: String?

  @Option(help: "Comma-separated k values for --low-shot (default 1,2,4,8,16,32,64,96).")
  var lowShotK: CommaSeparated<Int>?

  @Option(help: "Comma-separated layers among feature1 … feature5 (default: all; --features: every one there).")
  var layers: CommaSeparated<String>?

  @Option(help: "Comma-separated SVM costs (default: the reference's 1, 10, 100 and 0.5^4 … 0.5^19).")
  var costs: CommaSeparated<Double>?

  @Option(help: "Write the features, labels (and low-shot samples) as .npy files here.")
  var exportFeatures: String?

  @Option(help: "Journal and log directory (default: work_dirs/voc-svm/<label>).")
  var workDir: String?

  @Option(help: "Images per forward pass during feature extraction (data.batch_size, default 32).")
  var batchSize: Int?

  @Option(help: "The name reports show for this checkpoint (default: the file name).")
  var label: String?

  @Option(help: "Square input side (default 224; 32 for CIFAR-stem backbones). Not 224: adaptive pooling.")
  var imageSize: Int?

  @Option(help: "Short side before the squash (default 256; equal to --image-size when that is given).")
  var resize: Int?

  @Option(help: "Comma-separated per-channel means (x/255); default ImageNet's, or Fashion-MNIST's for 1 channel.")
  var mean: CommaSeparated<Float>?

  @Option(help: "Comma-separated per-channel stds; default ImageNet's, or Fashion-MNIST's for 1 channel.")
  var std: CommaSeparated<Float>?

  @Option(help: "Concurrent liblinear fits (svm.workers; 0: --threads).")
  var workers: Int?

  @Flag(help: ArgumentHelp(
    "Bit-reproducible SVMs: one fit at a time, each with the same seed for liblinear's coordinate order.",
    discussion: "Without it, fits run in parallel and liblinear's shuffles interleave, so repeated runs agree to "
      + "the solver tolerance, not bit for bit: on real VOC07 features, reruns were measured up to 0.06 mAP "
      + "points apart."))
  var deterministic = false

  func validate() throws {
    if features != nil {
      guard checkpoint == nil, data == nil else {
        throw ValidationError("--features replaces --checkpoint and --data; give either --features DIR or both.")
      }
    } else {
      guard checkpoint != nil, data != nil || config != nil else {
        throw ValidationError("Give --checkpoint and --data (a VOC year directory; or data.path in --config), or "
                                + "--features DIR.")
      }
    }
  }

  /// The config keys the flags stand for; `--set` comes after them and wins.
  var flagOverrides: [String] {
    func list<T>(_ values: [T]) -> String { "[" + values.map { "\($0)" }.joined(separator: ", ") + "]" }
    var keys: [String] = []
    if let data { keys.append("data.path=\(data)") }
    if let layers { keys.append("layers=\(list(layers.values))") }
    if let costs { keys.append("svm.costs=\(list(costs.values))") }
    if let imageSize {
      keys.append("data.image_size=\(imageSize)")
      if resize == nil { keys.append("data.resize=\(imageSize)") }  // --image-size alone: no upscale before the squash
    }
    if let resize { keys.append("data.resize=\(resize)") }
    if let mean { keys.append("data.mean=\(list(mean.values))") }
    if let std { keys.append("data.std=\(list(std.values))") }
    if let batchSize { keys.append("data.batch_size=\(batchSize)") }
    if let workers { keys.append("svm.workers=\(workers)") }
    if deterministic { keys.append("svm.deterministic=true") }
    if lowShot || lowShotSamples != nil { keys.append("low_shot.enabled=true") }
    if let lowShotK { keys.append("low_shot.k=\(list(lowShotK.values))") }
    if let lowShotSamples { keys.append("low_shot.samples_dir=\(lowShotSamples)") }
    if let seed = common.seed { keys.append("seed=\(seed)") }
    return keys
  }

  /// The request these options ask for (its config checked against the protocol defaults).
  func request() throws -> VOCSVMRequest {
    let input: VOCSVMRequest.Input = if let features {
      .features(directory: features)
    } else {
      .checkpoint(BackboneRequest(checkpoint: checkpoint!, layout: layoutOptions.layout,
                                  prefix: layoutOptions.prefix, allowMissing: allowMissing), data: nil)
    }
    var request = VOCSVMRequest(input: input, database: common.db, featureCache: featureCacheOptions.directory)
    try request.useConfigFile(config)
    request.overrides = flagOverrides + overrides
    _ = try request.config()
    request.exportFeatures = exportFeatures
    request.label = label
    request.workDirectory = workDir.map { URL(fileURLWithPath: $0) }
    return request
  }

  func run() throws {
    try common.runInLaunchedGroup(evaluate)
  }

  /// Under mpirun, rank 0 runs the recorded run and prints the table; the others take their share and print nothing.
  private func evaluate(in group: any ProcessGroup) throws {
    var request = try request()
    request.processGroup = group
    guard group.isRoot else { return try VOCSVMProtocol.runAsWorker(request) }
    let result = try VOCSVMProtocol.run(request)
    print(result.table.text())
    if let note = result.fullSetNote { print(note) }
    if !result.shortfalls.isEmpty {
      print("note: \(result.shortfalls.count) low-shot (class, k) pairs had fewer images than asked; all were used "
              + "(the list is in log.txt).")
    }
  }
}
