// One layer's features in liblinear's sparse format, built once and shared by every fit of the VOC07 SVM protocol
// (all classes, costs and folds): a fit only chooses a subset of row pointers and a label vector.
//
// liblinear 2.3.0 (Debian liblinear4), C API of linear.h. Facts about this build we rely on, read in its source
// (linear.cpp, 2.3.0) and checked in the binary:
// - solver L2R_L2LOSS_SVC_DUAL (= `-s 1`, scikit-learn's LinearSVC(loss='squared_hinge', dual=True)) runs dual
//   coordinate descent with shrinking; its iteration cap is hard-coded to 1000 (`max_iter = 1000` in
//   solve_l2r_l1l2_svc; the library has no setting for it). scikit-learn's patched copy takes max_iter from
//   LinearSVC (the reference passes 2000). Fits that reach the cap therefore stop earlier here (PROTOCOLS §8.10).
// - The coordinate order is shuffled with the C library's global `rand()`. Fits on several threads interleave
//   draws, so results are reproducible to the solver tolerance, not bit for bit (scikit-learn's are not either:
//   LinearSVC draws an unseeded seed). `SVMSettings.deterministic` runs fits one at a time, each after `srand(1)`,
//   as a fresh `train` process would.
// - A binary model's `w` (n = features + 1 with the bias column) scores `label[0]`, the label of the first row;
//   we flip it so that positive decision values always mean class +1.
// - Class weights multiply C per label (`-w1 2 -w-1 1`: C₊ = 2C, C₋ = C); the bias is a regularised constant
//   feature of value `bias` (`-B 1`), as in scikit-learn (intercept_scaling = 1).
// - liblinear prints progress through a global function; `silenceLiblinear()` replaces it with a no-op once.
// - Like scikit-learn's `dense_to_sparse`, zero features are not stored (they add nothing to any dot product).
import CLiblinear
import Foundation
import Tensors

/// Installs a no-op print function in liblinear (it is process-global); idempotent.
public func silenceLiblinear() {
  _ = liblinearSilenced
}

private let liblinearSilenced: Bool = {
  set_print_string_function { _ in }
  return true
}()

/// A trained binary linear SVM: decision(x) = w · x + b, positive for class +1.
public struct LinearSVMModel: Sendable, Equatable {
  public var weights: [Double]
  public var bias: Double
}

/// liblinear's settings for one fit (PROTOCOLS §2.3).
public struct LiblinearSettings: Sendable, Equatable {
  public var positiveWeight = 2.0
  public var negativeWeight = 1.0
  /// Value of the constant bias feature (`-B`).
  public var bias = 1.0
  /// Stopping tolerance (`-e`).
  public var epsilon = 1e-4
  public init() {}
}

/// The rows of a feature matrix, L2-normalised in float64 as x / (‖x‖₂ + 1e-5), in liblinear's `feature_node`
/// format with the bias node, in one allocation.
public final class LiblinearProblem: @unchecked Sendable {
  // @unchecked: the storage is written once in init and only read afterwards (liblinear takes const problems).
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
    let w = trainLiblinear(rows: pointers, features: dimension, labels: labels, cost: cost, settings: settings)
    return LinearSVMModel(weights: Array(w[0..<dimension]), bias: bias >= 0 ? w[dimension] * bias : 0)
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
/// 1…`features` plus, when `settings.bias ≥ 0`, the bias node at column `features + 1`. Returns the weights
/// [features (+ 1 for the bias column)], signed so that positive decision values mean class +1.
func trainLiblinear(rows pointers: UnsafeMutablePointer<UnsafeMutablePointer<feature_node>?>, features: Int,
                    labels: [Double], cost: Double, settings: LiblinearSettings) -> [Double] {
  let bias = settings.bias
  let columns = features + (bias >= 0 ? 1 : 0)
  var y = labels
  var weightLabels: [Int32] = [1, -1]
  var weights = [settings.positiveWeight, settings.negativeWeight]
  let model: UnsafeMutablePointer<model>? = y.withUnsafeMutableBufferPointer { yBuffer in
    weightLabels.withUnsafeMutableBufferPointer { labelBuffer in
      weights.withUnsafeMutableBufferPointer { weightBuffer in
        var problem = CLiblinear.problem(l: Int32(labels.count), n: Int32(columns),
                                         y: yBuffer.baseAddress, x: pointers, bias: bias)
        var parameter = CLiblinear.parameter(
          solver_type: Int32(L2R_L2LOSS_SVC_DUAL), eps: settings.epsilon, C: cost, nr_weight: 2,
          weight_label: labelBuffer.baseAddress, weight: weightBuffer.baseAddress, p: 0.1, init_sol: nil)
        if let message = check_parameter(&problem, &parameter) {
          preconditionFailure("liblinear rejected its parameters: \(String(cString: message)).")
        }
        return train(&problem, &parameter)
      }
    }
  }
  guard let model else { preconditionFailure("liblinear's train returned no model.") }
  defer {
    var owned: UnsafeMutablePointer<CLiblinear.model>? = model
    free_and_destroy_model(&owned)
  }
  let sign: Double = model.pointee.label[0] == 1 ? 1 : -1
  let w = model.pointee.w!
  return (0..<columns).map { sign * w[$0] }
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

/// Decision values of `models` on normalised test rows: [rows, models.count], row-major, through one `gemm`.
public func decisionValues(test: [Float], rows: Int, dimension: Int, models: [LinearSVMModel]) -> [Double] {
  precondition(test.count == rows * dimension, "Test features hold \(test.count) values, not \(rows) × \(dimension).")
  let count = models.count
  guard count > 0, rows > 0 else { return [] }
  var weights = [Float](repeating: 0, count: dimension * count)  // [dimension, models]
  for (slot, model) in models.enumerated() {
    precondition(model.weights.count == dimension, "A model has \(model.weights.count) weights, not \(dimension).")
    for j in 0..<dimension { weights[j * count + slot] = Float(model.weights[j]) }
  }
  var products = [Float](repeating: 0, count: rows * count)
  test.withUnsafeBufferPointer { a in
    weights.withUnsafeBufferPointer { b in
      products.withUnsafeMutableBufferPointer { c in
        gemm(m: rows, n: count, k: dimension, a.baseAddress!, b.baseAddress!, into: c.baseAddress!)
      }
    }
  }
  var values = [Double](repeating: 0, count: rows * count)
  for row in 0..<rows {
    for slot in 0..<count { values[row * count + slot] = Double(products[row * count + slot]) + models[slot].bias }
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
