// How each backbone output is pooled before an SVM or a multi-head probe sees it (PROTOCOLS §2.2, §4.1):
// MMSelfSup's `MultiPooling(pool_type='specified')` kernels at 224 input, or — our documented extension for inputs
// that are not 224 (CIFAR-size data) — adaptive average pooling to the same output grids.
import Layers
import Tensors

/// A backbone output the evaluators read: the five stages, or the global average pool of the last one.
public enum FeatureLayer: String, CaseIterable, Codable, Sendable, Comparable {
  case feature1, feature2, feature3, feature4, feature5
  /// Global average pool of layer4 (the kNN classifier's and the AvgPool probe's input).
  case avgpool

  /// The five stage outputs, stem to layer4 (MMSelfSup's `out_indices = [0, 1, 2, 3, 4]`).
  public static let stages: [FeatureLayer] = [.feature1, .feature2, .feature3, .feature4, .feature5]

  /// 0 … 4: index into `ResNet.inferFeatures`' result (`avgpool` pools stage 4).
  public var stageIndex: Int {
    switch self {
    case .feature1: 0
    case .feature2: 1
    case .feature3: 2
    case .feature4: 3
    case .feature5, .avgpool: 4
    }
  }

  public static func < (a: FeatureLayer, b: FeatureLayer) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// The pooling rule for the five stages; `avgpool` is always a global average.
public enum FeaturePooling: String, Codable, Sendable {
  /// MMSelfSup's fixed AvgPool2d kernels (count_include_pad, floor mode), valid for the ImageNet stem at 224:
  /// stage maps 112/56/28/14/7 → grids 12/6/4/3/2.
  case specified
  /// Adaptive average pooling (PyTorch `adaptive_avg_pool2d`) of each stage to the same grids 12/6/4/3/2.
  /// Our extension for inputs whose stage maps are not 112/56/28/14/7; recorded with every score.
  case adaptive

  /// (kernel, stride, padding) per stage: MMSelfSup `MultiPooling.POOL_PARAMS['specified']`.
  public static let specifiedKernels: [(kernel: Int, stride: Int, padding: Int)] =
    [(10, 10, 4), (16, 8, 0), (13, 5, 0), (8, 3, 0), (6, 1, 0)]
  /// Output grid side per stage (`POOL_SIZES`).
  public static let gridSizes = [12, 6, 4, 3, 2]
  /// Stage map sides the specified kernels are made for (ImageNet stem, 224 input).
  public static let specifiedInputSizes = [112, 56, 28, 14, 7]

  /// The rule for stage maps of these sides (one per stage, square maps): `specified` exactly when they are the
  /// ones MMSelfSup's kernels were made for, else `adaptive`.
  public static func rule(forStageSizes sizes: [Int]) -> FeaturePooling {
    sizes == specifiedInputSizes ? .specified : .adaptive
  }

  /// Pools one stage output `x` [n, h, w, c] of `layer` and flattens it in PyTorch NCHW order:
  /// [n, c · g · g] (g = the layer's grid side), or [n, c] for `avgpool`.
  public func pooledFlat(_ x: Tensor, layer: FeatureLayer) -> Tensor {
    precondition(x.rank == 4, "FeaturePooling expects an NHWC stage output, got shape \(x.shape).")
    if layer == .avgpool { return globalAvgPool(x) }
    let stage = layer.stageIndex
    let pooled: Tensor
    switch self {
    case .specified:
      let (kernel, stride, padding) = Self.specifiedKernels[stage]
      pooled = AvgPool2D(kernelSize: kernel, stride: stride, padding: padding).forward(x).0
      precondition(pooled.shape[1] == Self.gridSizes[stage] && pooled.shape[2] == Self.gridSizes[stage],
                   "Specified pooling of \(layer.rawValue) map \(x.shape) gives \(pooled.shape), not a "
                     + "\(Self.gridSizes[stage])×\(Self.gridSizes[stage]) grid; use adaptive pooling.")
    case .adaptive:
      pooled = adaptiveAvgPool2D(x, outputHeight: Self.gridSizes[stage], outputWidth: Self.gridSizes[stage])
    }
    return nhwcToFlatNCHW(pooled)
  }

  /// Feature dimension of `layer` for a stage with `channels` channels: e.g. ResNet-50 feature1 64 · 12² = 9216.
  public static func dimension(of layer: FeatureLayer, channels: Int) -> Int {
    layer == .avgpool ? channels : channels * gridSizes[layer.stageIndex] * gridSizes[layer.stageIndex]
  }
}

/// [n, h, w, c] → [n, c · h · w] in channel-major order (PyTorch's `x.view(n, -1)` of an NCHW tensor).
public func nhwcToFlatNCHW(_ x: Tensor) -> Tensor {
  precondition(x.rank == 4, "nhwcToFlatNCHW expects [n, h, w, c], got \(x.shape).")
  let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
  let plane = h * w
  return Tensor(uninitializedShape: [n, c * plane]) { output in
    x.scalars.withUnsafeBufferPointer { input in
      for image in 0..<n {
        let source = input.baseAddress! + image * plane * c
        let target = output.baseAddress! + image * plane * c
        for position in 0..<plane {
          for channel in 0..<c { target[channel * plane + position] = source[position * c + channel] }
        }
      }
    }
  }
}
