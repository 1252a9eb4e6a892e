// Low-shot VOC07 SVMs (PROTOCOLS §3): per class k positives and (classes − 1)·k negatives from the non-difficult
// trainval images, 5 samples per k, one fit per (k, sample, class, cost), no cross-validation, scored on the full
// test set; the cost with the best mean test mAP over samples is chosen per k.
import Datasets
import Foundation
import Tensors
import Support

/// The reference's k values and sample count.
public let referenceLowShotKs = [1, 2, 4, 8, 16, 32, 64, 96]
public let referenceLowShotSamples = 5

/// One sample's training targets for one k: [trainval images, classes], 1 = positive, 0 = negative, −1 = unused
/// (the FAIR benchmark's `train_targets_sample{s}_k{k}.npy` layout).
public struct LowShotSample: Sendable, Equatable {
  public var k: Int
  /// 1-based, as in the file names.
  public var sample: Int
  public var targets: [Int32]
}

/// The samples of a low-shot run and where they came from.
public struct LowShotDraw: Sendable, Equatable {
  public var samples: [LowShotSample]
  /// `seed=<n>` or `files=<dir>`: part of the provenance and of the journal key.
  public var source: String
  /// One line per (class, k) pair that had fewer than k positives or fewer than (classes − 1)·k negatives (or
  /// both, on the same line): all were used.
  public var shortfalls: [String]

  public var ks: [Int] { Array(Set(samples.map(\.k))).sorted() }
  public var sampleCount: Int { Set(samples.map(\.sample)).count }

  /// The k at which every sample holds the same images: each class had no more positives and negatives than asked,
  /// so every sample is the full set (or sample files that are all equal). Their columns repeat one draw; the
  /// table marks them. Empty with a single sample (nothing to repeat).
  public var fullSetKs: [Int] {
    ks.filter { k in
      let atK = samples.filter { $0.k == k }
      return atK.count > 1 && atK.allSatisfy { $0.targets == atK[0].targets }
    }
  }
}

/// Draws the samples with a recorded seed (the reference's `random.sample` is unseeded, PROTOCOLS §8.4).
///
/// For sample s, k and class c, a `SplitMix64.derived(seed, s, k, c)` generator picks k of the class's positive
/// images (label 1) and (classes − 1)·k of its negative images (label 0) by a partial Fisher–Yates shuffle of each
/// list in image order; difficult images (−1) are never drawn. **Rule when a class has fewer than k positives
/// (or too few negatives): all of them are used**, and the shortfall is listed in `shortfalls` (the reference's
/// `random.sample` would raise instead).
public func drawLowShotSamples(labels: SVMLabels, ks: [Int] = referenceLowShotKs,
                               samples: Int = referenceLowShotSamples, seed: UInt64) -> LowShotDraw {
  let classes = labels.classes.count
  let n = labels.images
  var drawn: [LowShotSample] = []
  var shortfalls: [String] = []
  let positives = (0..<classes).map { c in (0..<n).filter { labels[$0, c] == 1 } }
  let negatives = (0..<classes).map { c in (0..<n).filter { labels[$0, c] == 0 } }
  for k in ks {
    for c in 0..<classes {
      var short: [String] = []
      if positives[c].count < k { short.append("\(positives[c].count) positives < \(k)") }
      if negatives[c].count < (classes - 1) * k {
        short.append("\(negatives[c].count) negatives < \((classes - 1) * k)")
      }
      if !short.isEmpty {
        shortfalls.append("\(labels.classes[c]) at k=\(k): \(short.joined(separator: ", ")), all used")
      }
    }
  }
  for s in 1...samples {
    for k in ks {
      var targets = [Int32](repeating: -1, count: n * classes)
      for c in 0..<classes {
        var generator = SplitMix64.derived(seed, UInt64(s), UInt64(k), UInt64(c))
        for index in pick(positives[c], count: k, using: &generator) { targets[index * classes + c] = 1 }
        for index in pick(negatives[c], count: (classes - 1) * k, using: &generator) { targets[index * classes + c] = 0 }
      }
      drawn.append(LowShotSample(k: k, sample: s, targets: targets))
    }
  }
  return LowShotDraw(samples: drawn, source: "seed=\(seed)", shortfalls: shortfalls)
}

/// `count` elements of `items` without replacement (all of them when there are fewer).
private func pick(_ items: [Int], count: Int, using generator: inout SplitMix64) -> [Int] {
  var pool = items
  let taken = min(count, pool.count)
  for i in 0..<taken {
    let j = i + Int(generator.next() % UInt64(pool.count - i))
    pool.swapAt(i, j)
  }
  return Array(pool[0..<taken])
}

/// Reads `train_targets_sample{1…samples}_k{k}.npy` (int32 or int64, [trainval images, classes], values in
/// {1, 0, −1}) from `directory`, e.g. the FAIR benchmark's `low_shot_voc07/low_shot_train`.
public func readLowShotSamples(directory: URL, ks: [Int] = referenceLowShotKs, samples: Int = referenceLowShotSamples,
                               images: Int, classes: Int) throws -> LowShotDraw {
  var drawn: [LowShotSample] = []
  for s in 1...samples {
    for k in ks {
      let url = directory.appendingPathComponent("train_targets_sample\(s)_k\(k).npy")
      guard FileManager.default.fileExists(atPath: url.path) else {
        throw SVMError.missingLowShotSample(path: url.path)
      }
      let array = try NPY.read(url)
      guard array.shape == [images, classes] else {
        throw SVMError.badLowShotSample(
          path: url.path, reason: "shape \(array.shape), expected [\(images), \(classes)] (trainval images × "
            + "classes of this devkit)")
      }
      guard let values = array.integers else {
        throw SVMError.badLowShotSample(path: url.path, reason: "dtype \(array.data.dtype.rawValue), expected int32")
      }
      guard values.allSatisfy({ (-1...1).contains($0) }) else {
        throw SVMError.badLowShotSample(path: url.path, reason: "values outside {1, 0, -1}")
      }
      drawn.append(LowShotSample(k: k, sample: s, targets: values.map { Int32($0) }))
    }
  }
  return LowShotDraw(samples: drawn, source: "files=\(directory.path)", shortfalls: [])
}

/// Low-shot results of one layer.
public struct LowShotResult: Sendable, Equatable {
  public struct Summary: Sendable, Equatable {
    public var k: Int
    /// Index into `costs`: best mean test mAP over samples (ties → first).
    public var chosenCost: Int
    /// Over samples at the chosen cost, mAP in [0, 1]; `std` is NumPy's (ddof = 0).
    public var mean: Double
    public var min: Double
    public var max: Double
    public var std: Double
  }

  public var layer: String
  public var classes: [String]
  public var costs: [Double]
  /// Test APs per k: [sample][cost][class].
  public var classAP: [Int: [[[Double]]]]
  public var summaries: [Summary]

  /// mAP of (k, sample index, cost index).
  public func mAP(k: Int, sample: Int, cost: Int) -> Double {
    let values = classAP[k]![sample][cost]
    return values.reduce(0, +) / Double(values.count)
  }
}

extension SVMLayer {
  /// Low-shot protocol. Units `ls:k=<k>:s=<s>` hold all class × cost test APs of one (k, sample).
  ///
  /// With a `split` over several processes, process r computes the pending units at positions r, r + N, … and
  /// the units' APs are exchanged (SVMUnitSplit.swift): every process returns the single-process result. Only
  /// process 0 passes a journal.
  public func runLowShot(_ draw: LowShotDraw, settings: SVMSettings, journal: SVMJournal?,
                         split: SVMUnitSplit = .single, progress: SVMProgressHandler? = nil) throws -> LowShotResult {
    let classes = self.classes
    let costs = settings.costs
    let n = data.train.rows
    let ks = draw.ks
    let sampleIDs = Array(Set(draw.samples.map(\.sample))).sorted()
    for sample in draw.samples where sample.targets.count != n * classes.count {
      throw SVMError.shapeMismatch(what: "low-shot targets k=\(sample.k) sample \(sample.sample)",
                                   expected: "\(n) × \(classes.count)", actual: "\(sample.targets.count) values")
    }
    let counter = UnitCounter(limit: settings.stopAfterUnits)
    let total = draw.samples.count
    // Small k first: quick units show progress early.
    let ordered = draw.samples.sorted(by: { ($0.k, $0.sample) < ($1.k, $1.sample) })
    let width = classes.count * costs.count
    let journaled = try split.journaled(ordered.map { "ls:k=\($0.k):s=\($0.sample)" }, width: width, in: journal)
    let resumed = journaled.filter { $0 != nil }.count
    let done = ProgressCount(start: resumed)
    progress?(SVMProgress(stage: "\(data.layer) low-shot", done: resumed, total: total, resumed: resumed))
    var classAP: [Int: [[[Double]]]] = [:]
    for k in ks {
      classAP[k] = Array(repeating: [], count: sampleIDs.count)
    }
    // This process's units (the pending ones it owns), then the others' from the exchange.
    var flats = journaled
    let pending = ordered.indices.filter { journaled[$0] == nil }
    for (position, index) in pending.enumerated() where split.owns(position) {
      let sample = ordered[index]
      let flat = try lowShotUnit(sample, settings: settings)
      try journal?.record("ls:k=\(sample.k):s=\(sample.sample)", flat)
      flats[index] = flat
      progress?(SVMProgress(stage: "\(data.layer) low-shot", done: done.increment(), total: total, resumed: resumed))
      try counter.count()
    }
    if split.isSplit {
      let shared = try split.exchange(pending.enumerated().map { split.owns($0) ? flats[$1] : nil }, width: width)
      for (position, index) in pending.enumerated() where !split.owns(position) {
        let sample = ordered[index]
        try journal?.record("ls:k=\(sample.k):s=\(sample.sample)", shared[position])
        flats[index] = shared[position]
      }
      progress?(SVMProgress(stage: "\(data.layer) low-shot", done: done.set(total), total: total, resumed: resumed))
    }
    for (sample, flat) in zip(ordered, flats.map { $0! }) {
      let sampleSlot = sampleIDs.firstIndex(of: sample.sample)!
      classAP[sample.k]![sampleSlot] = costs.indices.map { cost in
        Array(flat[(cost * classes.count)..<((cost + 1) * classes.count)])
      }
    }
    var summaries: [LowShotResult.Summary] = []
    for k in ks {
      let grid = classAP[k]!  // [sample][cost][class]
      let maps = grid.map { perCost in perCost.map { $0.reduce(0, +) / Double($0.count) } }  // [sample][cost]
      let means = costs.indices.map { cost in maps.map { $0[cost] }.reduce(0, +) / Double(maps.count) }
      let chosen = firstArgmax(means)
      let values = maps.map { $0[chosen] }
      let mean = means[chosen]
      let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
      summaries.append(.init(k: k, chosenCost: chosen, mean: mean, min: values.min()!, max: values.max()!,
                             std: variance.squareRoot()))
    }
    return LowShotResult(layer: data.layer, classes: classes, costs: costs, classAP: classAP, summaries: summaries)
  }

  /// All class × cost fits of one sample in parallel, then their test APs; [cost][class] flattened.
  private func lowShotUnit(_ sample: LowShotSample, settings: SVMSettings) throws -> [Double] {
    let classes = self.classes.count
    let costs = settings.costs
    let n = data.train.rows
    var rowsOf: [[Int]] = []
    var labelsOf: [[Double]] = []
    for c in 0..<classes {
      // Rows with a target (≠ −1); 1 → +1, 0 → −1 (difficult images were never drawn).
      let rows = (0..<n).filter { sample.targets[$0 * classes + c] != -1 }
      rowsOf.append(rows)
      labelsOf.append(rows.map { sample.targets[$0 * classes + c] == 1 ? 1.0 : -1.0 })
    }
    let models = ModelSlots(count: classes * costs.count)
    let (frozenRows, frozenLabels) = (rowsOf, labelsOf)
    // One work item per class (its rows, hence its Gram factor, are shared by all costs), largest cost first.
    let costOrder = costs.indices.sorted { costs[$0] > costs[$1] }
    try runWorkQueue(count: classes, workers: settings.effectiveWorkers) { [self] c, _ in
      try fitShared(rows: frozenRows[c], jobs: costOrder.map { (frozenLabels[c], costs[$0]) }, settings: settings) {
        index, model in models.set(costOrder[index] * classes + c, model)
      }
    }
    return testAPs(models: models.all, classIndices: (0..<(classes * costs.count)).map { $0 % classes })
  }
}
