// VOC07-sized SVM protocol, ours (liblinear C API, shared problem, all cores) against the scikit-learn reference
// (scripts/reference/voc_svm_sklearn.py, joblib n_jobs over classes, as MMSelfSup's train_svm_kfold_parallel.py)
// on the same features: random features with class structure, 5,011 × 9,216 trainval and 4,952 test, 20 classes.
//
//   swift build -c release && .build/release/SVMBench --out /tmp/svm-bench [--bench-classes 0,1] [--jobs 2]
import Dispatch
import ArgumentParser
import CLiblinear
import Evaluation
import Foundation
import Tensors

struct Options {
  var out = "/tmp/svm-bench"
  var train = 5011
  var test = 4952
  var dimension = 9216
  var classes = 20
  var benchClasses: [Int]? = [0, 1]
  var jobs = 2
  var python = "python3"
  var skipSklearn = false
  var lowShot = true
  var lowShotKs = referenceLowShotKs
  var sklearnLowShotKs: [Int] = []
  var threads = 0
  /// Largest prototype value (class signal per feature); 0.8 makes every class separable, 0.1 gives VOC-like APs.
  var signal: Float = 0.1
  /// Time one fit per cost (class 0, fold-0 training rows) with liblinear's iteration counts, then stop.
  var profile = false
  /// Plain liblinear fits on the feature rows (the path before the Gram factor), for before/after figures.
  var gram = true

  /// The command line (`--help` prints the options; a bad one exits 64 with a message, as the CLI does).
  static func parse() -> Options {
    let parsed = SVMBenchArguments.parseOrExit()
    var options = Options()
    options.out = parsed.out
    options.train = parsed.train
    options.test = parsed.test
    options.dimension = parsed.dim
    options.classes = parsed.classes
    options.benchClasses = parsed.benchClasses == "all" ? nil : parsed.benchClasses.split(separator: ",").compactMap { Int($0) }
    options.jobs = parsed.jobs
    options.python = parsed.python
    options.skipSklearn = parsed.skipSklearn
    options.lowShot = !parsed.skipLowShot
    if let ks = parsed.lowShotK { options.lowShotKs = ks }
    if let ks = parsed.sklearnLowShotK { options.sklearnLowShotKs = ks }
    options.threads = parsed.threads
    options.signal = parsed.signal
    options.profile = parsed.profile
    options.gram = !parsed.noGram
    return options
  }
}

/// Comma-separated integers, e.g. "1,2,4".
private func integerList(_ text: String) throws -> [Int] {
  try text.split(separator: ",").map {
    guard let value = Int($0) else { throw ValidationError("'\(text)' is not a comma-separated list of integers.") }
    return value
  }
}

struct SVMBenchArguments: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "SVMBench", abstract: "VOC07-sized SVM protocol, ours (liblinear) against scikit-learn.")
  @Option(help: "Output folder for features and reports.") var out = "/tmp/svm-bench"
  @Option(help: "Training rows.") var train = 5011
  @Option(help: "Test rows.") var test = 4952
  @Option(help: "Feature dimension.") var dim = 9216
  @Option(help: "Classes.") var classes = 20
  @Option(help: "Classes timed against scikit-learn, comma-separated, or all.") var benchClasses = "0,1"
  @Option(help: "scikit-learn joblib jobs.") var jobs = 2
  @Option(help: "Python with scikit-learn.") var python = "python3"
  @Flag(help: "Time only our side.") var skipSklearn = false
  @Flag(help: "Skip the low-shot sweep.") var skipLowShot = false
  @Option(help: "Low-shot k values, comma-separated.", transform: integerList) var lowShotK: [Int]?
  @Option(help: "Low-shot k values for scikit-learn, comma-separated.", transform: integerList)
  var sklearnLowShotK: [Int]?
  @Option(help: "Threads (0: all cores).") var threads = 0
  @Option(help: "Largest prototype value (0.8 separable, 0.1 VOC-like).") var signal: Float = 0.1
  @Flag(help: "Time one fit per cost with liblinear's iteration counts, then stop.") var profile = false
  @Flag(help: "Plain liblinear fits on the feature rows (before the Gram factor).") var noGram = false

  func validate() throws {
    guard train > 0, test > 0, dim > 0, classes > 0, jobs > 0, (0...Threads.maximum).contains(threads) else {
      throw ValidationError("--train, --test, --dim, --classes and --jobs must be positive, --threads in 0…\(Threads.maximum).")
    }
    if benchClasses != "all" {
      for id in try integerList(benchClasses) where !(0..<classes).contains(id) {
        throw ValidationError("--bench-classes: class \(id) is not in 0..<\(classes).")
      }
    }
  }
}

/// `print` and flush, so lines appear while the sweep runs also when the output is redirected.
func say(_ line: String) {
  print(line)
  fflush(nil)
}

func seconds(since start: DispatchTime) -> Double {
  Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// VOC-like multi-label targets (1 / 0 / −1) and features: every image has 1–3 classes with VOC07's skewed
/// prevalence (person ≈ 40 %, others 2–8 %), ≈ 3 % of labels difficult; x = ReLU(Σ prototypes of its classes
/// (+ half-weight for difficult ones) + shared background + noise), float32, roughly 45 % zeros like pooled ReLU maps.
func makeSplit(rows: Int, dimension: Int, classes: Int, prototypes: [Float], background: [Float],
               generator: inout SplitMix64) -> ([Float], [Int32]) {
  var labels = [Int32](repeating: 0, count: rows * classes)
  let prevalence: [Double] = (0..<classes).map { c -> Double in
    if c == 14 { return 0.40 }
    let spread = Double((c * 7) % classes) / Double(classes)
    return 0.02 + 0.06 * spread
  }
  for i in 0..<rows {
    var any = false
    for c in 0..<classes where Double(generator.nextUniform()) < prevalence[c] {
      labels[i * classes + c] = generator.nextUniform() < 0.08 ? -1 : 1
      any = true
    }
    if !any { labels[i * classes + Int(generator.next() % UInt64(classes))] = 1 }
  }
  var features = [Float](repeating: 0, count: rows * dimension)
  for i in 0..<rows {
    var noise = SplitMix64.derived(generator.next())
    for j in 0..<dimension {
      var value = background[j] + 1.2 * (noise.nextUniform() - 0.5)
      for c in 0..<classes where labels[i * classes + c] != 0 {
        value += (labels[i * classes + c] == 1 ? 1 : 0.5) * prototypes[c * dimension + j]
      }
      features[i * dimension + j] = max(0, value)
    }
  }
  return (features, labels)
}

/// liblinear's progress text during `--profile` (single-threaded there).

let options = Options.parse()
Threads.configure(options.threads)
let out = URL(fileURLWithPath: options.out)
let names = (0..<options.classes).map { "class\($0)" }
var generator = SplitMix64(seed: 2007)
let prototypes = (0..<(options.classes * options.dimension)).map { _ in
  generator.nextUniform() < 0.15 ? generator.nextUniform() * options.signal : 0
}
let background = (0..<options.dimension).map { _ in generator.nextUniform() * 0.3 - 0.15 }
var start = DispatchTime.now()
let (trainScalars, trainTargets) = makeSplit(rows: options.train, dimension: options.dimension,
                                             classes: options.classes, prototypes: prototypes,
                                             background: background, generator: &generator)
let (testScalars, testTargets) = makeSplit(rows: options.test, dimension: options.dimension,
                                           classes: options.classes, prototypes: prototypes,
                                           background: background, generator: &generator)
let zeros = Double(trainScalars.lazy.filter { $0 == 0 }.count) / Double(trainScalars.count)
say(String(format: "features: %d × %d trainval, %d test, %d classes, %.0f %% zeros (%.1f s to make)",
             options.train, options.dimension, options.test, options.classes, 100 * zeros, seconds(since: start)))

let allData = SVMLayerData(
  layer: "feature5", train: FeatureMatrix(rows: options.train, columns: options.dimension, scalars: trainScalars),
  test: FeatureMatrix(rows: options.test, columns: options.dimension, scalars: testScalars),
  trainLabels: SVMLabels(classes: names, labels: trainTargets), testLabels: SVMLabels(classes: names, labels: testTargets))
let draw = drawLowShotSamples(labels: allData.trainLabels, ks: options.lowShotKs, seed: 0)
start = DispatchTime.now()
try exportSVMInputs(to: out, layers: [allData], lowShot: draw)
say(String(format: "exported to %@ (%.1f s)", out.path, seconds(since: start)))

// The benchmarked classes: the same label columns for both implementations.
func subset(_ labels: SVMLabels, _ columns: [Int]) -> SVMLabels {
  SVMLabels(classes: columns.map { labels.classes[$0] },
            labels: (0..<labels.images).flatMap { i in columns.map { labels[i, $0] } })
}
let columns = options.benchClasses ?? Array(0..<options.classes)
var data = allData
data.trainLabels = subset(allData.trainLabels, columns)
data.testLabels = subset(allData.testLabels, columns)

var settings = SVMSettings()
settings.gram = options.gram
start = DispatchTime.now()
let layer = try SVMLayer(data, settings: settings)
let prepare = seconds(since: start)

if options.profile {
  // Where a CV fit's time goes: liblinear's own iteration count (from its progress output) per cost.
  let labels = (0..<data.train.rows).map { data.trainLabels[$0, 0] == 1 ? 1.0 : -1.0 }
  let folds = stratifiedKFoldAssignment(labels: labels.map { Int($0) }, splits: 3)!
  let rows = (0..<labels.count).filter { folds[$0] != 0 }
  let heldOut = (0..<labels.count).filter { folds[$0] == 0 }
  var total = 0.0
  start = DispatchTime.now()
  let factor = layer.gramFactor(rows: rows)
  if let factor {
    total += seconds(since: start)
    say(String(format: "Gram factor of %d rows: %.2f s (trainval Gram matrix: part of the %.1f s layer build)",
                 factor.rows, seconds(since: start), prepare))
  } else {
    say("plain path (no Gram factor)")
  }
  // Gram path: the dense dual solver (blocked SIMD sums, then liblinear's summation order) and liblinear's own
  // solver on L's rows as feature_nodes (the Gram path before the dense solver), each timed per cost.
  var sums = [0.0, 0.0, 0.0]
  var profileLiblinear = settings.liblinear
  profileLiblinear.reseedsRandomOrder = true  // srand(1) before each dual solve: the three see the same order
  for cost in settings.costs {
    let fitLabels = rows.map { labels[$0] }
    start = DispatchTime.now()
    let model = try factor?.fit(labels: fitLabels, cost: cost, settings: profileLiblinear)
      ?? layer.problem.fit(rows: rows, labels: fitLabels, cost: cost, settings: profileLiblinear)
    let fit = seconds(since: start)
    let iterations = (lastDualIterationsOnThisThread().map(String.init) ?? "?")
      + (model.outcome == .finishedByPrimal ? " + primal" : "")
    start = DispatchTime.now()
    let scores = heldOut.map { layer.problem.decision(row: $0, model: model) }
    let ap = sklearnAveragePrecision(scores: scores, positive: heldOut.map { labels[$0] == 1 })
    let score = seconds(since: start)
    total += fit + score
    sums[0] += fit
    var line = String(format: "cost %-12g fit %6.3f s  iterations %@  decision+AP %.3f s  AP %.4f", cost, fit,
                      iterations, score, ap)
    if let factor {
      start = DispatchTime.now()
      let ordered = try factor.fit(labels: fitLabels, cost: cost, settings: profileLiblinear, dotProduct: .liblinear)
      let orderedFit = seconds(since: start)
      let orderedIterations = lastDualIterationsOnThisThread() ?? -1
      start = DispatchTime.now()
      let reference = try factor.fitThroughLiblinearRows(labels: fitLabels, cost: cost, settings: profileLiblinear)
      let referenceFit = seconds(since: start)
      let referenceIterations = lastDualIterationsOnThisThread() ?? -1
      sums[1] += orderedFit
      sums[2] += referenceFit
      let difference = zip(model.weights, reference.weights).map { abs($0 - $1) }.max() ?? 0
      let scale = reference.weights.map(abs).max() ?? 1
      line += String(format: " | liblinear order %6.3f s (%d it., %@) | liblinear rows %6.3f s (%d it.), "
                       + "max |Δw| / max |w| %.1e", orderedFit, orderedIterations,
                     ordered == reference ? "bit-identical" : "differs", referenceFit, referenceIterations,
                     difference / scale)
    }
    say(line)
  }
  if factor != nil {
    say(String(format: "19 fits: dense %.2f s, dense in liblinear's summation order %.2f s, "
                   + "liblinear on L's rows %.2f s", sums[0], sums[1], sums[2]))
  }
  say(String(format: "one class-fold, 19 costs: %.1f s", total))
  exit(0)
}
let fullStart = DispatchTime.now()
let ours = try layer.runFull(settings: settings, journal: nil)
let oursFull = seconds(since: fullStart)
say(String(format: "ours: full protocol, %d classes × 19 costs × (3 folds + final): %.1f s (+ %.1f s to build the "
               + "shared liblinear problem%@), %d workers; mAP %.4f", columns.count, oursFull, prepare,
             options.gram ? " and the trainval Gram matrix" : "", settings.effectiveWorkers, 100 * ours.mAP))
say("  " + layer.fitPaths.description)
say("  chosen costs: " + ours.chosenCost.map { "\(ours.costs[$0])" }.joined(separator: ", "))

var lowShotSeconds: Double?
if options.lowShot {
  let allLayer = try SVMLayer(allData, settings: settings)
  start = DispatchTime.now()
  let sweepStart = DispatchTime.now()
  let low = try allLayer.runLowShot(draw, settings: settings, journal: nil) { progress in
    say(String(format: "  low-shot %d/%d (k, sample) units, %.0f s", progress.done, progress.total,
                 seconds(since: sweepStart)))
  }
  lowShotSeconds = seconds(since: start)
  say(String(format: "ours: low-shot sweep, %d classes × %d k × 5 samples × 19 costs: %.1f s", options.classes,
               options.lowShotKs.count, lowShotSeconds!))
  say("  " + allLayer.fitPaths.description)
  say("  " + low.summaries.map { String(format: "k=%d %.2f", $0.k, 100 * $0.mean) }.joined(separator: "  "))
}

if !options.skipSklearn {
  let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../scripts/reference/voc_svm_sklearn.py").standardized.path
  var arguments = [script, out.path, "--layers", "feature5", "--jobs", "\(options.jobs)",
                   "--classes", columns.map(String.init).joined(separator: ",")]
  if !options.sklearnLowShotKs.isEmpty {
    arguments += ["--low-shot", "--ks", options.sklearnLowShotKs.map(String.init).joined(separator: ",")]
  }
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = [options.python] + arguments
  let pipe = Pipe()
  process.standardOutput = pipe
  start = DispatchTime.now()
  try process.run()
  let output = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  let wall = seconds(since: start)
  guard process.terminationStatus == 0,
        let json = try JSONSerialization.jsonObject(with: output) as? [String: Any],
        let layers = json["layers"] as? [String: Any], let feature5 = layers["feature5"] as? [String: Any],
        let map = feature5["mAP"] as? Double, let timings = json["seconds"] as? [String: Double]
  else { fatalError("the scikit-learn reference failed (status \(process.terminationStatus))") }
  let sklearnFull = timings["feature5/full"] ?? wall
  say(String(format: "scikit-learn (n_jobs=%d): full protocol %.1f s (process wall %.1f s incl. loading); "
                 + "mAP %.4f", options.jobs, sklearnFull, wall, 100 * map))
  say(String(format: "speed-up (full protocol, same classes): %.2f× (%.2f× counting our problem build)",
               sklearnFull / oursFull, sklearnFull / (oursFull + prepare)))
  say(String(format: "|ΔmAP| = %.4f points", abs(100 * (map - ours.mAP))))
  if let low = timings["feature5/low_shot"] {
    say(String(format: "scikit-learn low-shot (k = %@): %.1f s", options.sklearnLowShotKs.map(String.init)
      .joined(separator: ","), low))
  }
}
