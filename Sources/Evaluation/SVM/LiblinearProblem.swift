// One layer's features in liblinear's sparse format, built once and shared by every fit of the VOC07 SVM protocol
// (all classes, costs and folds): a fit only chooses a subset of row pointers and a label vector.
//
// liblinear 2.3.0 (Debian liblinear4), C API of linear.h. Facts about this build we rely on, read in its source
// (linear.cpp, 2.3.0) and checked in the binary:
// - solver L2R_L2LOSS_SVC_DUAL (= `-s 1`, scikit-learn's LinearSVC(loss='squared_hinge', dual=True)) runs dual
//   coordinate descent with shrinking; its iteration cap is hard-coded to 1000 (`max_iter = 1000` in
//   solve_l2r_l1l2_svc; the library has no setting for it). scikit-learn's patched copy takes max_iter from
//   LinearSVC (the reference passes 2000). Where a fit stops at a cap, the point it stops at depends on the
//   coordinate order, which is unseeded in the reference: measured on scene features, 41–45 of 760 fits per layer
//   reached 1000 iterations at eps 1e-4 and moved scikit-learn's mAP by 0.15 points against the same fits run to
//   convergence, and two runs of either implementation differ there. Deviation (PROTOCOLS §8.10): a fit that
//   reaches the cap is finished by liblinear's primal solver for the same problem (L2R_L2LOSS_SVC, trust-region
//   Newton, started from the dual's w through `init_sol`). The primal and dual have one optimum w (the objective
//   is strictly convex), so every fit ends at the optimum to the tolerance, independent of the coordinate order —
//   the value scikit-learn gives with a large max_iter. `LiblinearSettings.finishCappedFits` turns this off.
//   We learn of the cap from liblinear's "reaching max number of iterations" message, which its print function
//   receives on the fitting thread (a per-thread flag; the print function itself is process-global).
// - The coordinate order is shuffled with the C library's global `rand()`. Fits on several threads interleave
//   draws, so results are reproducible to the solver tolerance, not bit for bit (scikit-learn's are not either:
//   LinearSVC draws an unseeded seed). `SVMSettings.deterministic` runs fits one at a time, each after `srand(1)`,
//   as a fresh `train` process would.
// - A binary model's `w` (n = features + 1 with the bias column) scores `label[0]`, the label of the first row;
//   we flip it so that positive decision values always mean class +1.
// - Class weights multiply C per label (`-w1 2 -w-1 1`: C₊ = 2C, C₋ = C); the bias is a regularised constant
//   feature of value `bias` (`-B 1`), as in scikit-learn (intercept_scaling = 1).
// - liblinear prints progress through a global function; before every solve `silenceLiblinear()` installs one
//   that prints nothing and only notes the iteration-cap warning and the iteration count for the calling thread.
// - Like scikit-learn's `dense_to_sparse`, zero features are not stored (they add nothing to any dot product).
import CLiblinear
import Foundation
import Tensors

/// Installs liblinear's print function (process-global): silent, it only notes, for the thread that runs the fit,
/// the iteration-cap warning and the "#iter = N" count of the solve. Every solve installs it again, so code that
/// installed another one (a test, a benchmark) cannot blind the cap detection for later fits.
public func silenceLiblinear() {
  set_print_string_function(liblinearPrint)
}

private let liblinearPrint: @convention(c) (UnsafePointer<CChar>?) -> Void = { message in
  guard let message else { return }
  var state = SolveReport.current
  if strstr(message, "reaching max number of iterations") != nil { state.reachedCap = true }
  if let count = strstr(message, "#iter = ") { state.iterations = strtol(count + 8, nil, 10) }
  SolveReport.current = state
}

/// What liblinear reported about the last solve on this thread, kept in one thread-specific word:
/// bit 0 = "reached the iteration cap", the bits above = iteration count + 1 (0: none reported). (A first version
/// with one pthread key per field read every solve as capped in release builds only: it created each key inside a
/// `precondition`, which -Ounchecked — then our release setting — never evaluates, so both "keys" were 0. The key is
/// created outside the precondition here, and release builds are -O now; SVMBench's fit counts are the release check.)
struct SolveReport {
  var reachedCap = false
  var iterations: Int?

  private static let key: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key, nil)
    precondition(status == 0, "pthread_key_create failed (\(status)) for liblinear's solve report.")
    return key
  }()

  static var current: SolveReport {
    get {
      let word = pthread_getspecific(key).map { Int(bitPattern: $0) } ?? 0
      return SolveReport(reachedCap: word & 1 == 1, iterations: word >> 1 == 0 ? nil : (word >> 1) - 1)
    }
    set {
      let word = (newValue.iterations.map { $0 + 1 } ?? 0) << 1 | (newValue.reachedCap ? 1 : 0)
      pthread_setspecific(key, UnsafeRawPointer(bitPattern: word))
    }
  }
}

/// The iteration count liblinear reported for the last dual solve on this thread (nil: none reported).
public func lastDualIterationsOnThisThread() -> Int? { SolveReport.current.iterations }

/// How a liblinear fit ended.
public enum LiblinearOutcome: Sendable, Equatable {
  /// The dual solver met the tolerance.
  case converged
  /// The dual solver reached its 1000-iteration cap; the primal solver finished the fit to the tolerance.
  case finishedByPrimal
  /// Stopped at an iteration cap (the dual's with `finishCappedFits` off, or the primal's as well).
  case stoppedAtCap
}

/// A trained binary linear SVM: decision(x) = w · x + b, positive for class +1.
public struct LinearSVMModel: Sendable, Equatable {
  public var weights: [Double]
  public var bias: Double
  /// How liblinear's solve ended (not part of the model's value: two equal models compare equal however reached).
  public var outcome: LiblinearOutcome = .converged

  public init(weights: [Double], bias: Double, outcome: LiblinearOutcome = .converged) {
    self.weights = weights
    self.bias = bias
    self.outcome = outcome
  }

  public static func == (lhs: Self, rhs: Self) -> Bool { lhs.weights == rhs.weights && lhs.bias == rhs.bias }
}

/// liblinear's settings for one fit (PROTOCOLS §2.3).
public struct LiblinearSettings: Sendable, Equatable {
  public var positiveWeight = 2.0
  public var negativeWeight = 1.0
  /// Value of the constant bias feature (`-B`).
  public var bias = 1.0
  /// Stopping tolerance (`-e`).
  public var epsilon = 1e-4
  /// Finish fits that reach the dual solver's iteration cap with the primal solver (see the file's header).
  public var finishCappedFits = true
  /// `srand(1)` before the dual solve, run while no other liblinear solve runs in the process (the C library's
  /// `rand()` is process-global): the coordinate order of a fresh `train` process, so reruns are bit-identical
  /// even beside concurrent fits (other suites in the test process). Set by `SVMSettings.deterministic`.
  public var reseedsRandomOrder = false
  public init() {}
}

/// Who may draw from `rand()` for liblinear's coordinate order: any number of ordinary solves at once, or one
/// reseeded solve alone (it waits for running solves, and new ones wait for it).
///
/// The counters are `nonisolated(unsafe)` and guarded by hand, only while holding `condition`: this lock waits for
/// the other mode to end, which `Synchronization.Mutex` (no condition variable) cannot express.
enum LiblinearRandomOrder {
  nonisolated(unsafe) private static var ordinarySolves = 0
  nonisolated(unsafe) private static var reseededWaiting = 0
  nonisolated(unsafe) private static var reseededRunning = false
  private static let condition = NSCondition()

  static func withAccess<R>(reseeded: Bool, _ body: () -> R) -> R {
    condition.lock()
    if reseeded {
      reseededWaiting += 1
      while reseededRunning || ordinarySolves > 0 { condition.wait() }
      reseededWaiting -= 1
      reseededRunning = true
    } else {
      while reseededRunning || reseededWaiting > 0 { condition.wait() }
      ordinarySolves += 1
    }
    condition.unlock()
    defer {
      condition.lock()
      if reseeded { reseededRunning = false } else { ordinarySolves -= 1 }
      condition.broadcast()
      condition.unlock()
    }
    if reseeded { srand(1) }
    return body()
  }
}

/// The rows of a feature matrix, L2-normalised in float64 as x / (‖x‖₂ + 1e-5), in liblinear's `feature_node`
/// format with the bias node, in one allocation.
public final class LiblinearProblem: @unchecked Sendable {
  // @unchecked: the storage is written once in init and only read afterwards (liblinear takes const problems). Raw
  // pointers are never Sendable, so the compiler cannot check this; nothing mutable needs a lock.
  public let rows: Int
  /// Feature dimension without the bias column.
  public let dimension: Int
  public let bias: Double
  private let nodes: UnsafeMutablePointer<feature_node>
  private let rowStart: UnsafeMutablePointer<Int>  // [rows + 1] offsets into `nodes`

  /// Builds the storage. `location(row)` names a row's image for the error on a non-finite value.
  public init(features: FeatureMatrix, bias: Double, layer: String,
              location: (Int) -> String) throws {
    if let (row, column) = features.firstNonFinite() {
      throw SVMError.nonFiniteFeature(layer: layer, image: location(row), column: column,
                                      value: Double(features[row, column]))
    }
    silenceLiblinear()
    let rows = features.rows
    let columns = features.columns
    self.rows = rows
    dimension = columns
    self.bias = bias
    let rowStart = UnsafeMutablePointer<Int>.allocate(capacity: rows + 1)
    self.rowStart = rowStart
    // Non-zero counts per row, then offsets (+ bias node + terminator per row).
    let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(rows, 1))
    defer { counts.deallocate() }
    features.withUnsafeBufferPointer { buffer in
      let base = buffer.baseAddress!
      parallelFor(0..<rows, minimumChunk: 64) { range in
        for row in range {
          var nonZero = 0
          let x = base + row * columns
          for j in 0..<columns where x[j] != 0 { nonZero += 1 }
          counts[row] = nonZero
        }
      }
    }
    var total = 0
    for row in 0..<rows {
      rowStart[row] = total
      total += counts[row] + (bias >= 0 ? 1 : 0) + 1
    }
    rowStart[rows] = total
    let nodes = UnsafeMutablePointer<feature_node>.allocate(capacity: max(total, 1))
    self.nodes = nodes
    let dimension = columns
    features.withUnsafeBufferPointer { buffer in
      let base = buffer.baseAddress!
      parallelFor(0..<rows, minimumChunk: 64) { range in
        for row in range {
          let x = base + row * columns
          let scale = svmNormalizationScale(x, count: columns)
          var node = nodes + rowStart[row]
          for j in 0..<columns where x[j] != 0 {
            // x / (‖x‖ + 1e-5) in float64, as `normalize_features` after `astype(np.float64)`.
            node.pointee = feature_node(index: Int32(j + 1), value: Double(x[j]) * scale)
            node += 1
          }
          if bias >= 0 {
            node.pointee = feature_node(index: Int32(dimension + 1), value: bias)
            node += 1
          }
          node.pointee = feature_node(index: -1, value: 0)
        }
      }
    }
  }

  deinit {
    nodes.deallocate()
    rowStart.deallocate()
  }

  /// Trains on `rows` with labels ±1 (`labels[i]` for `rows[i]`) at cost `cost`. Both labels must occur.
  public func fit(rows subset: [Int], labels: [Double], cost: Double, settings: LiblinearSettings) throws
    -> LinearSVMModel
  {
    precondition(subset.count == labels.count, "fit needs one label per row: \(subset.count) rows, \(labels.count) labels.")
    precondition(settings.bias == bias, "The problem was built with bias \(bias), the fit asks for \(settings.bias).")
    guard labels.contains(1), labels.contains(-1) else {
      throw SVMError.singleClassFit(positives: labels.filter { $0 == 1 }.count, rows: labels.count)
    }
    let pointers = UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>.allocate(capacity: subset.count)
    defer { pointers.deallocate() }
    for (slot, row) in subset.enumerated() {
      precondition(row >= 0 && row < rows, "Row \(row) is outside the problem's \(rows) rows.")
      pointers[slot] = nodes + rowStart[row]
    }
    let (w, outcome) = trainLiblinear(rows: pointers, features: dimension, labels: labels, cost: cost,
                                      settings: settings)
    return LinearSVMModel(weights: Array(w[0..<dimension]), bias: bias >= 0 ? w[dimension] * bias : 0,
                          outcome: outcome)
  }

  /// Stored row `row` (normalised, float64) as (column, value) nodes; `body` sees them without the bias node.
  func withRow<R>(_ row: Int, _ body: (UnsafePointer<feature_node>) -> R) -> R {
    body(UnsafePointer(nodes + rowStart[row]))
  }

  /// w · x + b for stored row `row` (normalised features), in float64 — scikit-learn's `decision_function`.
  public func decision(row: Int, model: LinearSVMModel) -> Double {
    var node = nodes + rowStart[row]
    var total = 0.0
    model.weights.withUnsafeBufferPointer { w in
      while node.pointee.index != -1 {
        let index = Int(node.pointee.index)
        if index <= dimension { total += w[index - 1] * node.pointee.value }
        node += 1
      }
    }
    return total + model.bias
  }
}

/// One liblinear `train` (solver `-s 1`) on `labels.count` rows given as `feature_node` pointers whose columns are
/// 1…`features` plus, when `settings.bias ≥ 0`, the bias node at column `features + 1`; a fit that reaches the dual
/// solver's iteration cap is finished by the primal solver (`-s 2`) from the dual's weights when
/// `settings.finishCappedFits`. Returns the weights [features (+ 1 for the bias column)], signed so that positive
/// decision values mean class +1, and how the solve ended.
func trainLiblinear(rows pointers: UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>, features: Int,
                    labels: [Double], cost: Double, settings: LiblinearSettings) -> ([Double], LiblinearOutcome) {
  let columns = features + (settings.bias >= 0 ? 1 : 0)
  // The model's raw w scores label[0], the first row's label: the same for both solves (same rows, same order),
  // so the dual's raw w is the primal's starting point as it is.
  var (raw, sign, capped) = solveLiblinear(rows: pointers, columns: columns, labels: labels, cost: cost,
                                           solver: Int32(L2R_L2LOSS_SVC_DUAL), start: nil, settings: settings)
  var outcome = LiblinearOutcome.converged
  if capped {
    outcome = .stoppedAtCap
    if settings.finishCappedFits {
      let primal = solveLiblinear(rows: pointers, columns: columns, labels: labels, cost: cost,
                                  solver: Int32(L2R_L2LOSS_SVC), start: raw, settings: settings)
      precondition(primal.sign == sign, "liblinear's primal solve ordered the labels differently from the dual's.")
      raw = primal.weights
      outcome = primal.capped ? .stoppedAtCap : .finishedByPrimal
    }
  }
  return (raw.map { sign * $0 }, outcome)
}

/// liblinear's primal solver (`-s 2`, trust-region Newton) on `columns`-wide `feature_node` rows, started from
/// `start`: weights that score class +1, as the Gram path's dense dual solver returns them. With labels ±1,
/// liblinear 2.3.0's `group_classes` makes +1 its label[0], so its raw weights score class +1 too (checked).
/// Returns the primal's weights [columns] and whether it reached its own cap.
func finishWithLiblinearPrimal(rows pointers: UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>,
                               columns: Int, labels: [Double], cost: Double, start: [Double],
                               settings: LiblinearSettings) -> (weights: [Double], capped: Bool) {
  precondition(start.count == columns, "The primal start has \(start.count) weights, not \(columns).")
  let primal = solveLiblinear(rows: pointers, columns: columns, labels: labels, cost: cost,
                              solver: Int32(L2R_L2LOSS_SVC), start: start, settings: settings)
  precondition(primal.sign == 1, "liblinear's primal solve did not take class +1 as its first label.")
  return (primal.weights, primal.capped)
}

/// One liblinear `train` with `solver`, from `start` (primal solvers only) or liblinear's own start: the model's
/// raw weights [columns], the sign that makes them score class +1, and whether the solver reported its cap.
private func solveLiblinear(rows pointers: UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>, columns: Int,
                            labels: [Double], cost: Double, solver: Int32, start: [Double]?,
                            settings: LiblinearSettings) -> (weights: [Double], sign: Double, capped: Bool) {
  var y = labels
  var weightLabels: [Int32] = [1, -1]
  var weights = [settings.positiveWeight, settings.negativeWeight]
  var initial = start ?? []
  silenceLiblinear()
  SolveReport.current = SolveReport()
  let model: UnsafeMutablePointer<model>? = y.withUnsafeMutableBufferPointer { yBuffer in
    weightLabels.withUnsafeMutableBufferPointer { labelBuffer in
      weights.withUnsafeMutableBufferPointer { weightBuffer in
        initial.withUnsafeMutableBufferPointer { initialBuffer in
          var problem = CLiblinear.problem(l: Int32(labels.count), n: Int32(columns),
                                           y: yBuffer.baseAddress, x: pointers, bias: settings.bias)
          var parameter = CLiblinear.parameter(
            solver_type: solver, eps: settings.epsilon, C: cost, nr_weight: 2,
            weight_label: labelBuffer.baseAddress, weight: weightBuffer.baseAddress, p: 0.1,
            init_sol: start == nil ? nil : initialBuffer.baseAddress)
          if let message = check_parameter(&problem, &parameter) {
            preconditionFailure("liblinear rejected its parameters: \(String(cString: message)).")
          }
          // Only the dual solvers draw from rand(); a primal finish keeps the order its dual solve had.
          return LiblinearRandomOrder.withAccess(reseeded: settings.reseedsRandomOrder && start == nil) {
            train(&problem, &parameter)
          }
        }
      }
    }
  }
  let capped = SolveReport.current.reachedCap
  guard let model else { preconditionFailure("liblinear's train returned no model.") }
  defer {
    var owned: UnsafeMutablePointer<CLiblinear.model>? = model
    free_and_destroy_model(&owned)
  }
  let w = model.pointee.w!
  return ((0..<columns).map { w[$0] }, model.pointee.label[0] == 1 ? 1 : -1, capped)
}

/// Test features normalised like the training rows, as a dense float32 [rows, dimension] matrix for `gemm`.
/// Normalisation is in float64; the products run in float32 (OpenBLAS sgemm) — decision values differ from the
/// reference's float64 ones in the 7th significant digit, which moves an AP only where two scores tie that closely.
public func normalizedDense(_ features: FeatureMatrix, layer: String, location: (Int) -> String) throws -> [Float] {
  if let (row, column) = features.firstNonFinite() {
    throw SVMError.nonFiniteFeature(layer: layer, image: location(row), column: column,
                                    value: Double(features[row, column]))
  }
  let (rows, columns) = (features.rows, features.columns)
  var output = [Float](repeating: 0, count: rows * columns)
  output.withUnsafeMutableBufferPointer { out in
    let target = out.baseAddress!
    features.withUnsafeBufferPointer { buffer in
      let base = buffer.baseAddress!
      parallelFor(0..<rows, minimumChunk: 64) { range in
        for row in range {
          let x = base + row * columns
          let scale = svmNormalizationScale(x, count: columns)
          for j in 0..<columns { target[row * columns + j] = Float(Double(x[j]) * scale) }
        }
      }
    }
  }
  return output
}

/// Decision values of `models` on normalised test rows: [rows, models.count], row-major, wᵀx + b in float64.
///
/// As scikit-learn's `decision_function` computes them for the reference (FAIR's low-shot scripts): float32
/// features times float64 weights, which NumPy evaluates in float64. Scoring in float32 (the weights rounded to
/// float32, products summed by sgemm) moved per-(k, sample, cost) low-shot mAP by up to 0.22 points, and the cost
/// is chosen from those values (issue 14 item 12). The dense test copy stays float32 (half the memory); blocks of
/// `blockRows` rows are widened to float64 (exactly) and multiplied with dgemm.
/// Cost, measured with a standalone -O copy of both paths (OpenBLAS 0.3.21, 2 threads, this 2-core machine under a
/// load of ~7, best of 3) for one low-shot unit on VOC07 (4952 test rows, 380 models = 20 classes × 19 costs):
/// 2048 columns 0.20 s (sgemm) → 0.48 s; 9216 columns 0.93 s → 2.8 s. About 2.4–3× the float32 time, paid once per
/// (k, sample) unit (40 per layer) and once per full-SVM layer.
public func decisionValues(test: [Float], rows: Int, dimension: Int, models: [LinearSVMModel],
                           blockRows: Int = 256) -> [Double] {
  precondition(test.count == rows * dimension, "Test features hold \(test.count) values, not \(rows) × \(dimension).")
  precondition(blockRows >= 1, "decisionValues needs a positive block size, got \(blockRows).")
  let count = models.count
  guard count > 0, rows > 0 else { return [] }
  var weights = [Double](repeating: 0, count: dimension * count)  // [dimension, models]
  for (slot, model) in models.enumerated() {
    precondition(model.weights.count == dimension, "A model has \(model.weights.count) weights, not \(dimension).")
    for j in 0..<dimension { weights[j * count + slot] = model.weights[j] }
  }
  var values = [Double](repeating: 0, count: rows * count)  // [rows, models]
  let block = min(blockRows, rows)
  let widened = UnsafeMutablePointer<Double>.allocate(capacity: block * dimension)  // [block rows, dimension]
  defer { widened.deallocate() }
  test.withUnsafeBufferPointer { test in
    weights.withUnsafeBufferPointer { weights in
      values.withUnsafeMutableBufferPointer { values in
        for first in stride(from: 0, to: rows, by: block) {
          let blockCount = min(block, rows - first)
          let source = test.baseAddress! + first * dimension
          parallelFor(0..<(blockCount * dimension), minimumChunk: 1 << 16) { range in
            for index in range { widened[index] = Double(source[index]) }
          }
          gemm(m: blockCount, n: count, k: dimension, widened, weights.baseAddress!,
               into: values.baseAddress! + first * count)
        }
      }
    }
  }
  for row in 0..<rows {
    for slot in 0..<count { values[row * count + slot] += models[slot].bias }
  }
  return values
}

/// 1 / (‖x‖₂ + 1e-5) for the `count` values at `x`, summed in float64: the reference's per-sample SVM normalisation
/// (PROTOCOLS §2.3), shared by the liblinear rows and the dense normalised copy.
@inline(__always)
func svmNormalizationScale(_ x: UnsafePointer<Float>, count: Int) -> Double {
  var squares = 0.0
  for j in 0..<count { squares += Double(x[j]) * Double(x[j]) }
  return 1 / (squares.squareRoot() + svmNormalizationEpsilon)
}
