// The VOC07 SVM protocols of PROTOCOLS §2.3 (full data, per-class 3-fold CV cost selection) and §3 (low-shot),
// on one layer's features, through liblinear, with every independent fit on its own worker and every finished
// unit journaled so that an interrupted run resumes where it stopped.
import Datasets
import Foundation
import Support
import Synchronization
import Tensors
import Support

/// How the protocols run.
public struct SVMSettings: Sendable, Equatable {
  public var costs: [Double] = referenceSVMCosts
  public var liblinear = LiblinearSettings()
  public var folds = 3
  /// Concurrent fits; 0 uses `Threads.count`.
  public var workers = 0
  /// One fit at a time, each after `srand(1)` with no other liblinear solve running in the process: bit-reproducible
  /// results (see LiblinearProblem.swift, `LiblinearSettings.reseedsRandomOrder`).
  public var deterministic = false
  /// Fits with fewer rows than features run on the Cholesky factor of their Gram block (GramSVM.swift): the same
  /// liblinear dual problem and result up to rounding, at n² instead of n · d cost per iteration. Off: every fit on
  /// the stored feature rows.
  public var gram = true
  /// Test hook: stop (throwing `SVMError.interrupted`) once this many units were recorded in this call.
  public var stopAfterUnits: Int?

  public init() {}

  public var effectiveWorkers: Int { deterministic ? 1 : (workers > 0 ? workers : Threads.count) }

  /// These settings as protocol-variant facets (the run's stored variant and the SVM journal keys read them):
  /// costs, solver and its cap rule, class weights, bias, tolerance, CV and the AP rules.
  public var variant: ProtocolVariant {
    var variant = ProtocolVariant()
    variant["costs"] = costs == referenceSVMCosts ? "reference-19" : costs.map { "\($0)" }.joined(separator: ",")
    variant["solver"] = "liblinear-2.3.0:L2R_L2LOSS_SVC_DUAL:max_iter=1000:"
      + (liblinear.finishCappedFits ? "then-L2R_L2LOSS_SVC-at-cap" : "stop-at-cap")
    variant["class-weights"] = "+\(liblinear.positiveWeight),-\(liblinear.negativeWeight)"
    variant["bias"] = "\(liblinear.bias)"
    variant["eps"] = "\(liblinear.epsilon)"
    variant["cv"] = "StratifiedKFold(\(folds)):sklearn-AP"
    variant["test-ap"] = "all-point(calculate_ap)"
    return variant
  }
}

/// Progress of a protocol stage: finished units (including ones read from the journal) out of all.
public struct SVMProgress: Sendable {
  public var stage: String
  public var done: Int
  public var total: Int
  /// Units found in the journal when the stage started.
  public var resumed: Int
}

public typealias SVMProgressHandler = @Sendable (SVMProgress) -> Void

/// Per-image class labels of one split: `labels[image · classes.count + class]` ∈ {1, 0, −1 (difficult)}, as in
/// MMSelfSup's `SVMLabels/*_labels.npy`.
public struct SVMLabels: Sendable, Equatable {
  public var classes: [String]
  public var images: Int
  public var labels: [Int32]

  public init(classes: [String], labels: [Int32]) {
    precondition(!classes.isEmpty && labels.count % classes.count == 0,
                 "SVM labels: \(labels.count) values do not fill rows of \(classes.count) classes.")
    self.classes = classes
    self.images = labels.count / classes.count
    self.labels = labels
  }

  public init(_ matrix: VOCLabelMatrix) { self.init(classes: matrix.classes, labels: matrix.labels) }

  public subscript(image: Int, classIndex: Int) -> Int32 { labels[image * classes.count + classIndex] }

  /// Images labelled 1 per class.
  public var positiveCounts: [Int] {
    (0..<classes.count).map { c in (0..<images).reduce(0) { $0 + (self[$1, c] == 1 ? 1 : 0) } }
  }
}

/// One layer's inputs: trainval and test features with their VOC label matrices (1 / 0 / −1 = difficult).
public struct SVMLayerData: Sendable {
  public var layer: String
  public var train: FeatureMatrix
  public var test: FeatureMatrix
  public var trainLabels: SVMLabels
  public var testLabels: SVMLabels
  /// Names image `row` of trainval / test in errors.
  public var trainLocation: @Sendable (Int) -> String
  public var testLocation: @Sendable (Int) -> String

  public init(layer: String, train: FeatureMatrix, test: FeatureMatrix, trainLabels: SVMLabels,
              testLabels: SVMLabels, trainLocation: @escaping @Sendable (Int) -> String = { "trainval[\($0)]" },
              testLocation: @escaping @Sendable (Int) -> String = { "test[\($0)]" }) {
    self.layer = layer
    self.train = train
    self.test = test
    self.trainLabels = trainLabels
    self.testLabels = testLabels
    self.trainLocation = trainLocation
    self.testLocation = testLocation
  }
}

/// A layer prepared once for all its fits: the liblinear problem over trainval and the normalised test matrix.
public final class SVMLayer: Sendable {
  public let data: SVMLayerData
  public let problem: LiblinearProblem
  /// Trainval Gram matrix (when `SVMSettings.gram`), the source of every fit's factor.
  public let gram: SVMGramMatrix?
  let testDense: [Float]
  let pathCounter = FitPathCounter()
  public var classes: [String] { data.trainLabels.classes }

  public init(_ data: SVMLayerData, settings: SVMSettings) throws {
    let classes = data.trainLabels.classes
    guard data.testLabels.classes == classes else {
      throw SVMError.shapeMismatch(what: "test classes", expected: classes.joined(separator: ","),
                                   actual: data.testLabels.classes.joined(separator: ","))
    }
    guard data.train.rows == data.trainLabels.images, data.test.rows == data.testLabels.images else {
      throw SVMError.shapeMismatch(
        what: "\(data.layer) feature rows vs labelled images (trainval, test)",
        expected: "\(data.trainLabels.images), \(data.testLabels.images)",
        actual: "\(data.train.rows), \(data.test.rows)")
    }
    guard data.train.columns == data.test.columns else {
      throw SVMError.shapeMismatch(what: "\(data.layer) feature columns (trainval vs test)",
                                   expected: "\(data.train.columns)", actual: "\(data.test.columns)")
    }
    for (c, name) in classes.enumerated() {
      if !(0..<data.train.rows).contains(where: { data.trainLabels[$0, c] == 1 }) {
        throw SVMError.noPositives(className: name, split: "trainval")
      }
      if !(0..<data.test.rows).contains(where: { data.testLabels[$0, c] == 1 }) {
        throw SVMError.noPositives(className: name, split: "test")
      }
    }
    self.data = data
    problem = try LiblinearProblem(features: data.train, bias: settings.liblinear.bias, layer: data.layer,
                                   location: data.trainLocation)
    gram = settings.gram ? SVMGramMatrix(problem: problem) : nil
    testDense = try normalizedDense(data.test, layer: data.layer, location: data.testLocation)
  }

  /// Test APs (all-point, difficult excluded) of `models[c]` for class `classIndices[c]`.
  func testAPs(models: [LinearSVMModel], classIndices: [Int]) -> [Double] {
    let rows = data.test.rows
    let values = decisionValues(test: testDense, rows: rows, dimension: data.test.columns, models: models)
    return classIndices.enumerated().map { slot, c in
      var scores: [Double] = []
      var positive: [Bool] = []
      for row in 0..<rows where data.testLabels[row, c] != -1 {
        scores.append(values[row * models.count + slot])
        positive.append(data.testLabels[row, c] == 1)
      }
      return vocAllPointAP(scores: scores, positive: positive)
    }
  }

  /// Seconds the full protocol will take, from two timed fits (largest and smallest cost, class 0, fold-0 training
  /// rows) scaled to all fits and workers. A rough figure: fit times vary between classes.
  public func estimateFullSeconds(settings: SVMSettings) throws -> Double {
    let labels = (0..<data.train.rows).map { data.trainLabels[$0, 0] == 1 ? 1.0 : -1.0 }
    guard let folds = stratifiedKFoldAssignment(labels: labels.map { Int($0) }, splits: settings.folds) else { return 0 }
    let rows = (0..<labels.count).filter { folds[$0] != 0 }
    let probes = [settings.costs.max()!, settings.costs.min()!]
    let start = DispatchTime.now()
    var probeSettings = settings
    probeSettings.deterministic = false
    // The factor (when used) is built once per class and fold, and shared by its costs: counted once here.
    try fitShared(rows: rows, jobs: probes.map { (rows.map { labels[$0] }, $0) }, settings: probeSettings) { _, _ in }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    // Costs between the extremes: the mean of the two probes; a final fit per class (chosen cost) ≈ one more fold.
    let fits = Double(classes.count * settings.costs.count * settings.folds + classes.count)
    return seconds / Double(probes.count) * fits / Double(settings.effectiveWorkers)
  }
}

/// Counts units recorded in one call, for progress and the test hook.
final class UnitCounter: Sendable {
  private let recorded = Mutex(0)
  let limit: Int?
  init(limit: Int?) { self.limit = limit }
  /// Counts one recorded unit; throws `interrupted` when the limit is reached.
  func count() throws {
    let now = recorded.withLock { recorded in
      recorded += 1
      return recorded
    }
    if let limit, now >= limit { throw SVMError.interrupted(afterUnits: now) }
  }
}

// MARK: - Full protocol

/// The full-data result of one layer.
public struct FullSVMResult: Sendable, Equatable {
  public var layer: String
  public var classes: [String]
  public var costs: [Double]
  /// 3-fold CV APs (scikit-learn AP), [class][cost][fold].
  public var cvAP: [[[Double]]]
  /// Index into `costs` chosen per class (best mean CV AP; ties → first).
  public var chosenCost: [Int]
  /// All-point test AP per class (difficult images excluded).
  public var testAP: [Double]

  public func meanCV(_ c: Int, _ cost: Int) -> Double { cvAP[c][cost].reduce(0, +) / Double(cvAP[c][cost].count) }
  /// Mean test AP over classes, in [0, 1].
  public var mAP: Double { testAP.reduce(0, +) / Double(testAP.count) }
}

/// `np.argmax`: the first index of the largest value.
func firstArgmax(_ values: [Double]) -> Int {
  var best = 0
  for index in values.indices where values[index] > values[best] { best = index }
  return best
}

extension SVMLayer {
  /// Full-data protocol (PROTOCOLS §2.3). Training labels: 1 → +1, 0 and −1 (difficult) → −1 (difficult images
  /// are trained as negatives, as the reference does); test: difficult images excluded.
  ///
  /// Units: `cv:<class>:c=<cost>:f=<fold>` (one fit, one held-out AP) and `final:<class>` (the refit at the
  /// chosen cost and its test AP). Unlike the reference, which refits every cost on all trainval, only the chosen
  /// cost is refitted: the other refits never reach a reported number.
  ///
  /// With a `split` over several processes, each fits its share of the pending (class, fold) groups and of the
  /// final classes (SVMUnitSplit.swift); the final models are exchanged, so every process scores all of them in
  /// one pass and returns the single-process result. Only process 0 passes a journal.
  public func runFull(settings: SVMSettings, journal: SVMJournal?, split: SVMUnitSplit = .single,
                      progress: SVMProgressHandler? = nil) throws -> FullSVMResult
  {
    let classes = self.classes
    let n = data.train.rows
    let costs = settings.costs
    let folds = settings.folds
    var labels: [[Double]] = []
    var foldOf: [[Int]] = []
    for (c, name) in classes.enumerated() {
      let y = (0..<n).map { data.trainLabels[$0, c] == 1 ? 1.0 : -1.0 }
      let positives = y.filter { $0 == 1 }.count
      guard positives >= folds, let assignment = stratifiedKFoldAssignment(labels: y.map { Int($0) }, splits: folds)
      else { throw SVMError.tooFewPositivesForCV(className: name, positives: positives, folds: folds) }
      labels.append(y)
      foldOf.append(assignment)
    }
    let counter = UnitCounter(limit: settings.stopAfterUnits)
    let workers = settings.effectiveWorkers

    // Phase 1: CV units, largest cost first (the slowest fits) for load balance.
    struct CVUnit { var c: Int; var cost: Int; var fold: Int; var name: String }
    var units: [CVUnit] = []
    for cost in costs.indices.sorted(by: { costs[$0] > costs[$1] }) {
      for c in classes.indices {
        for fold in 0..<folds {
          units.append(CVUnit(c: c, cost: cost, fold: fold, name: "cv:\(classes[c]):c=\(costs[cost]):f=\(fold)"))
        }
      }
    }
    let store = ResultGrid(classes: classes.count, costs: costs.count, folds: folds)
    var pending: [CVUnit] = []
    for (unit, journaled) in zip(units, try split.journaled(units.map(\.name), width: 1, in: journal)) {
      if let value = journaled?.first {
        store.set(unit.c, unit.cost, unit.fold, value)
      } else {
        pending.append(unit)
      }
    }
    let resumed = units.count - pending.count
    let totalUnits = units.count + classes.count
    let done = ProgressCount(start: resumed)
    progress?(SVMProgress(stage: "\(data.layer) cv", done: resumed, total: totalUnits, resumed: resumed))
    // Units sharing a class and fold share their training rows, hence one Gram factor: one work item each,
    // its costs largest first.
    var groups: [[CVUnit]] = []
    var groupOf: [String: Int] = [:]
    for unit in pending {
      let key = "\(unit.c):\(unit.fold)"
      if let index = groupOf[key] { groups[index].append(unit) } else {
        groupOf[key] = groups.count
        groups.append([unit])
      }
    }
    let frozenGroups = groups.indices.filter(split.owns).map { groups[$0] }
    let (frozenLabels, frozenFolds) = (labels, foldOf)
    try runWorkQueue(count: frozenGroups.count, workers: workers) { [self] index, _ in
      let group = frozenGroups[index]
      let (c, fold) = (group[0].c, group[0].fold)
      let y = frozenLabels[c]
      let assignment = frozenFolds[c]
      let trainRows = (0..<n).filter { assignment[$0] != fold }
      let heldOut = (0..<n).filter { assignment[$0] == fold }
      let trainLabels = trainRows.map { y[$0] }
      try fitSharedScoring(rows: trainRows, scoring: heldOut, jobs: group.map { (trainLabels, costs[$0.cost]) },
                           settings: settings) { slot, scores in
        let unit = group[slot]
        let ap = sklearnAveragePrecision(scores: scores, positive: heldOut.map { y[$0] == 1 })
        try journal?.record(unit.name, [ap])
        store.set(unit.c, unit.cost, unit.fold, ap)
        progress?(SVMProgress(stage: "\(data.layer) cv", done: done.increment(), total: totalUnits, resumed: resumed))
        try counter.count()
      }
    }
    if split.isSplit {
      // The other processes' CV APs, in `pending` order (a unit's owner is its group's); process 0 journals them.
      let ownedGroups = Set(frozenGroups.map { "\($0[0].c):\($0[0].fold)" })
      let values = store.values
      let local = pending.map { unit -> [Double]? in [values[unit.c][unit.cost][unit.fold]] }
      let owner = pending.map { ownedGroups.contains("\($0.c):\($0.fold)") }
      let shared = try split.exchange(zip(local, owner).map { $1 ? $0 : nil }, width: 1)
      for (unit, (values, mine)) in zip(pending, zip(shared, owner)) where !mine {
        store.set(unit.c, unit.cost, unit.fold, values[0])
        try journal?.record(unit.name, values)
      }
      progress?(SVMProgress(stage: "\(data.layer) cv", done: done.set(units.count), total: totalUnits,
                            resumed: resumed))
    }
    let cvAP = store.values
    let chosen = classes.indices.map { c in
      firstArgmax(costs.indices.map { cost in cvAP[c][cost].reduce(0, +) / Double(folds) })
    }

    // Phase 2: final fits at the chosen cost, then one gemm over the test set.
    var testAP = [Double](repeating: .nan, count: classes.count)
    var finalPending: [Int] = []
    let finalJournaled = try split.journaled(classes.map { "final:\($0)" }, width: 2, in: journal)
    for c in classes.indices {
      if let values = finalJournaled[c], Int(values[0]) == chosen[c] {
        testAP[c] = values[1]
      } else {
        finalPending.append(c)
      }
    }
    let models = ModelSlots(count: finalPending.count)
    let frozenFinal = finalPending
    let ownedSlots = frozenFinal.indices.filter(split.owns)
    // Every final fit uses all trainval rows: one factor for all classes.
    let allRows = Array(0..<n)
    let finalFactor: GramFactor? = ownedSlots.isEmpty ? nil : gramFactor(rows: allRows)
    try runWorkQueue(count: ownedSlots.count, workers: workers) { [self] index, _ in
      let slot = ownedSlots[index]
      let c = frozenFinal[slot]
      try fitShared(rows: allRows, jobs: [(frozenLabels[c], costs[chosen[c]])], settings: settings,
                    factor: .some(finalFactor)) { _, model in models.set(slot, model) }
    }
    if split.isSplit {
      // Every process's final models ([weights, bias] per class), so that all are scored in one pass as a single
      // process scores them.
      let dimension = data.test.columns
      let local = models.optional.map { $0.map { $0.weights + [$0.bias] } }
      for (slot, values) in try split.exchange(local, width: dimension + 1).enumerated() where local[slot] == nil {
        models.set(slot, LinearSVMModel(weights: Array(values[0..<dimension]), bias: values[dimension]))
      }
    }
    if !finalPending.isEmpty {
      let aps = testAPs(models: models.all, classIndices: finalPending)
      for (slot, c) in finalPending.enumerated() {
        testAP[c] = aps[slot]
        try journal?.record("final:\(classes[c])", [Double(chosen[c]), aps[slot]])
        // The journal's resume count was reported when the CV stage started; not again here.
        progress?(SVMProgress(stage: "\(data.layer) final", done: done.increment(), total: totalUnits, resumed: 0))
        try counter.count()
      }
    }
    return FullSVMResult(layer: data.layer, classes: classes, costs: costs, cvAP: cvAP, chosenCost: chosen,
                         testAP: testAP)
  }
}

/// Thread-safe [class][cost][fold] grid.
final class ResultGrid: Sendable {
  private let grid: Mutex<[[[Double]]]>
  init(classes: Int, costs: Int, folds: Int) {
    grid = Mutex(Array(repeating: Array(repeating: Array(repeating: .nan, count: folds), count: costs),
                       count: classes))
  }
  func set(_ c: Int, _ cost: Int, _ fold: Int, _ value: Double) {
    grid.withLock { $0[c][cost][fold] = value }
  }
  var values: [[[Double]]] { grid.withLock { $0 } }
}

final class ModelSlots: Sendable {
  private let models: Mutex<[LinearSVMModel?]>
  init(count: Int) { models = Mutex(Array(repeating: nil, count: count)) }
  func set(_ slot: Int, _ model: LinearSVMModel) {
    models.withLock { $0[slot] = model }
  }
  var all: [LinearSVMModel] { models.withLock { $0.map { $0! } } }
  /// The models set so far (nil: not fitted here).
  var optional: [LinearSVMModel?] { models.withLock { $0 } }
}

final class ProgressCount: Sendable {
  private let value: Mutex<Int>
  init(start: Int) { value = Mutex(start) }
  /// Sets the count (units finished by other processes); returns it.
  func set(_ count: Int) -> Int {
    value.withLock { $0 = count }
    return count
  }

  func increment() -> Int {
    value.withLock { value in
      value += 1
      return value
    }
  }
}
