// Anchor generation for a single feature level: the per-location cell anchors and their tiling over the grid.
// References: detectron2 modeling/anchor_generator.py (`DefaultAnchorGenerator.generate_cell_anchors`,
// `_create_grid_offsets`, `_grid_anchors`); mmdet 2.x core/anchor/anchor_generator.py (`AnchorGenerator` and
// `LegacyAnchorGenerator.gen_single_level_base_anchors`, `single_level_grid_priors`).
import Foundation
import Tensors

/// Which library's anchor conventions to follow. The sizes come out equal (w = sqrt(s²/a), h = a·w with
/// a = h/w); what differs is the order of the anchors at a location and where their centre sits.
///
/// - `detectron2(offset:)`: size-major then ratio (for size { for ratio }), centred at 0 in the cell, grid
///   shifts `offset·stride + k·stride`. The MoCo / MMSelfSup detectron2 configs (`Base-RCNN-C4-BN.yaml`) use offset 0.
/// - `mmdet(centerOffset:)`: mmdet 2.x `AnchorGenerator` with `scale_major=True`, which despite its name is
///   ratio-major (for ratio { for scale }); centre `centerOffset·baseSize`, grid shifts `k·stride`. The seed's
///   mmdet config `faster_rcnn_r50_c4` uses `AnchorGenerator(scales=[2,4,8,16,32], ratios=[0.5,1,2], strides=[16])`:
///   base size = stride = 16, centre offset 0, so its boxes equal detectron2's (offset 0) up to the order.
/// - `mmdetLegacy(centerOffset:)`: mmdet 1.x `gen_base_anchors` (mmdet 2.x `LegacyAnchorGenerator`): centre
///   `centerOffset·(baseSize − 1)`, corners at ±0.5·(ws − 1), rounded half-to-even (torch.round); ratio-major.
public enum AnchorConvention: Sendable, Equatable {
  case detectron2(offset: Float)
  case mmdet(centerOffset: Float)
  case mmdetLegacy(centerOffset: Float)
}

/// Anchors of one feature level: `sizes` (pixels, = mmdet's scales × base size) × `aspectRatios` (h/w) per
/// location, tiled over a `stride`-spaced grid.
public struct AnchorGenerator: Sendable, Equatable {
  public var sizes: [Float]
  public var aspectRatios: [Float]
  public var stride: Int
  public var convention: AnchorConvention

  /// detectron2: `sizes` directly. For mmdet, pass sizes = scales × base size (base size = stride by default).
  public init(sizes: [Float], aspectRatios: [Float], stride: Int, convention: AnchorConvention) {
    precondition(!sizes.isEmpty && !aspectRatios.isEmpty && stride > 0,
                 "AnchorGenerator needs sizes, ratios and a positive stride, got \(sizes), \(aspectRatios), \(stride).")
    self.sizes = sizes
    self.aspectRatios = aspectRatios
    self.stride = stride
    self.convention = convention
  }

  /// PROTOCOLS §5.1: sizes 32–512 (scales 2…32 × stride 16), ratios 0.5/1/2, stride 16.
  public static func fasterRCNNC4(convention: AnchorConvention) -> AnchorGenerator {
    AnchorGenerator(sizes: [32, 64, 128, 256, 512], aspectRatios: [0.5, 1, 2], stride: 16, convention: convention)
  }

  public var anchorsPerLocation: Int { sizes.count * aspectRatios.count }

  /// The anchors of the location at (0, 0): `[anchorsPerLocation, 4]` (x1, y1, x2, y2) in the convention's order.
  public func cellAnchors() -> Tensor {
    var result = [Float]()
    result.reserveCapacity(anchorsPerLocation * 4)
    switch convention {
    case .detectron2:
      // generate_cell_anchors works in Python floats (double) and stores float32.
      for size in sizes {
        let area = Double(size) * Double(size)
        for ratio in aspectRatios {
          let w = (area / Double(ratio)).squareRoot(), h = Double(ratio) * w
          result += [Float(-w / 2), Float(-h / 2), Float(w / 2), Float(h / 2)]
        }
      }
    case .mmdet(let centerOffset), .mmdetLegacy(let centerOffset):
      // mmdet works in float32 tensors with base size = stride: ws = base · (1/sqrt(r)) · scale, hs = base · sqrt(r) · scale.
      let base = Float(stride)
      let isLegacy = if case .mmdetLegacy = convention { true } else { false }
      let center = isLegacy ? centerOffset * (base - 1) : centerOffset * base
      for ratio in aspectRatios {
        let hRatio = ratio.squareRoot(), wRatio = 1 / hRatio
        for size in sizes {
          let scale = size / base
          let ws = base * wRatio * scale, hs = base * hRatio * scale
          if isLegacy {
            result += [center - 0.5 * (ws - 1), center - 0.5 * (hs - 1), center + 0.5 * (ws - 1),
                       center + 0.5 * (hs - 1)].map { $0.rounded(.toNearestOrEven) }
          } else {
            result += [center - 0.5 * ws, center - 0.5 * hs, center + 0.5 * ws, center + 0.5 * hs]
          }
        }
      }
    }
    return Tensor(shape: [anchorsPerLocation, 4], scalars: result)
  }

  /// All anchors of a `[height, width]` feature map: `[height · width · anchorsPerLocation, 4]`, location-major
  /// (row y, then column x), then the cell order — the order of an NHWC objectness map `[1, h, w, A]` flattened.
  public func gridAnchors(featureHeight: Int, featureWidth: Int) -> Tensor {
    precondition(featureHeight >= 0 && featureWidth >= 0,
                 "gridAnchors needs a non-negative feature size, got \(featureHeight)×\(featureWidth).")
    let cell = cellAnchors().scalars
    let perLocation = anchorsPerLocation
    let offset: Float = if case .detectron2(let offset) = convention { offset * Float(stride) } else { 0 }
    return Tensor(uninitializedShape: [featureHeight * featureWidth * perLocation, 4]) { out in
      var index = 0
      for y in 0..<featureHeight {
        let shiftY = offset + Float(y * stride)
        for x in 0..<featureWidth {
          let shiftX = offset + Float(x * stride)
          for a in 0..<perLocation {
            out[index] = cell[4 * a] + shiftX
            out[index + 1] = cell[4 * a + 1] + shiftY
            out[index + 2] = cell[4 * a + 2] + shiftX
            out[index + 3] = cell[4 * a + 3] + shiftY
            index += 4
          }
        }
      }
    }
  }
}

/// Which anchors `[k, 4]` lie inside an image of `height` × `width` up to `allowedBorder` pixels (mmdet 2.x
/// `anchor_inside_flags`: x1, y1 ≥ −border and x2 < width + border, y2 < height + border). A negative border keeps
/// every anchor (detectron2's RPN, mmdet's `allowed_border=-1`); the seed's C4 config uses `allowed_border=0`.
public func anchorsInsideImage(_ anchors: Tensor, height: Int, width: Int, allowedBorder: Float) -> [Bool] {
  precondition(anchors.rank == 2 && anchors.shape[1] == 4, "anchorsInsideImage expects [k, 4] anchors, got \(anchors.shape).")
  let a = anchors.scalars
  guard allowedBorder >= 0 else { return [Bool](repeating: true, count: anchors.shape[0]) }
  let (w, h) = (Float(width), Float(height))
  return (0..<anchors.shape[0]).map { i in
    a[4 * i] >= -allowedBorder && a[4 * i + 1] >= -allowedBorder
      && a[4 * i + 2] < w + allowedBorder && a[4 * i + 3] < h + allowedBorder
  }
}
