// The layer API: explicit caches, hand-written backward passes, PyTorch state-dict names.
import Tensors

/// Whether BatchNorm uses batch statistics (and updates its running ones) or its running statistics,
/// and whether dropout drops. Passed explicitly to every `forward`; there is no global mode.
public enum Mode: Sendable {
  case training, inference
}

/// A tensor the model owns: a trainable weight, or a buffer such as BatchNorm's running mean.
///
/// `grad` accumulates ∂L/∂value across `backward` calls until `zeroGrad()`. Buffers have no gradient and
/// are never touched by optimisers. `value` is stored in the engine's internal layout; `exportLayout`
/// says how to turn it into PyTorch's layout for checkpoints and fixtures.
public final class Parameter {
  /// How a stored value maps to the PyTorch state-dict tensor.
  public enum ExportLayout: Sendable {
    /// Same shape and order as PyTorch.
    case identity
    /// Conv weight stored `[out, kh, kw, in]` (OHWI); PyTorch stores `[out, in, kh, kw]` (OIHW).
    case convOHWI
  }

  /// The element type the tensor has in a PyTorch state dict.
  public enum StorageType: Sendable {
    case float32
    /// Integer counters such as `num_batches_tracked`; held exactly in Float up to 2^24.
    case int64
  }

  public var value: Tensor
  public var grad: Tensor
  /// False for frozen weights (a frozen backbone; the official SimSiam projector's last bias).
  public var isTrainable: Bool
  /// True for running statistics and counters: saved and loaded, never optimised.
  public let isBuffer: Bool
  public let exportLayout: ExportLayout
  public let storageType: StorageType

  public init(_ value: Tensor, isTrainable: Bool = true, isBuffer: Bool = false,
              exportLayout: ExportLayout = .identity, storageType: StorageType = .float32) {
    self.value = value
    self.grad = isBuffer ? Tensor.zeros([0]) : Tensor.zeros(value.shape)
    self.isTrainable = isTrainable && !isBuffer
    self.isBuffer = isBuffer
    self.exportLayout = exportLayout
    self.storageType = storageType
  }

  /// Resets the accumulated gradient to zero.
  public func zeroGrad() {
    guard !isBuffer else { return }
    if grad.shape != value.shape {
      grad = Tensor.zeros(value.shape)
    } else {
      grad.scalars.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }
  }

  /// The value in PyTorch's layout.
  public var exportedValue: Tensor {
    switch exportLayout {
    case .identity: value
    case .convOHWI: value.permuted([0, 3, 1, 2])
    }
  }

  /// The accumulated gradient in PyTorch's layout (for comparisons with PyTorch's `.grad`).
  public var exportedGrad: Tensor {
    switch exportLayout {
    case .identity: grad
    case .convOHWI: grad.permuted([0, 3, 1, 2])
    }
  }

  /// Replaces the value from a tensor in PyTorch's layout (shape checked by the caller).
  public func importValue(_ pytorchValue: Tensor) {
    switch exportLayout {
    case .identity: value = pytorchValue
    case .convOHWI: value = pytorchValue.permuted([0, 2, 3, 1])
    }
  }

  /// The PyTorch shape of this tensor.
  public var exportedShape: [Int] {
    switch exportLayout {
    case .identity: value.shape
    case .convOHWI: [value.shape[0], value.shape[3], value.shape[1], value.shape[2]]
    }
  }
}

/// A named parameter or buffer, named by its PyTorch state-dict key.
public typealias NamedParameter = (name: String, parameter: Parameter)

/// A building block with a hand-written backward pass.
///
/// `forward` returns everything `backward` needs as an explicit `Cache`, so a layer can run several
/// times per step (SimSiam's two views) and what a step keeps in memory is visible in the type.
public protocol Layer: AnyObject {
  associatedtype Cache
  /// Runs the layer on `x` and returns the output with what backward needs.
  func forward(_ x: Tensor, mode: Mode) -> (Tensor, Cache)
  /// Returns ∂L/∂x given ∂L/∂y, and adds ∂L/∂θ into each trainable parameter's `grad`.
  func backward(_ dy: Tensor, _ cache: Cache) -> Tensor
  /// Parameters and buffers under their PyTorch state-dict names, in state-dict order.
  var namedParameters: [NamedParameter] { get }
}

extension Layer {
  /// Forward without keeping a cache (inference, feature extraction).
  public func callAsFunction(_ x: Tensor, mode: Mode = .inference) -> Tensor { forward(x, mode: mode).0 }

  public var parameters: [Parameter] { namedParameters.map(\.parameter) }

  public func zeroGrad() { for parameter in parameters { parameter.zeroGrad() } }
}

/// Prefixes child names the way `nn.Module.state_dict()` does: `prefix.name`.
public func prefixed(_ prefix: String, _ children: [NamedParameter]) -> [NamedParameter] {
  children.map { (name: "\(prefix).\($0.name)", parameter: $0.parameter) }
}
