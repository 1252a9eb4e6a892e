// The FPN's top-down step `laterals[i - 1] += F.interpolate(laterals[i], size=prev_shape, mode='nearest')` on NHWC
// maps, forward and backward (PyTorch aten/src/ATen/native/UpSample.h `nearest_idx`, upsample_nearest2d).
import Tensors

/// PyTorch's nearest source index of output index `destination` (`nearest_idx` with no scale factor given): the
/// identity when the sizes are equal, `destination >> 1` when the output is exactly twice the input, otherwise
/// min(⌊destination · (in / out)⌋, in − 1) with the scale and the product in Float32, as the kernel computes it.
public func nearestSourceIndex(_ destination: Int, inputSize: Int, outputSize: Int) -> Int {
  if outputSize == inputSize { return destination }
  if outputSize == 2 * inputSize { return destination >> 1 }
  let scale = Float(inputSize) / Float(outputSize)
  return min(Int((Float(destination) * scale).rounded(.down)), inputSize - 1)
}

/// `target + F.interpolate(source, size=(target h, target w), mode='nearest')`: `source` `[n, hs, ws, c]`,
/// `target` `[n, h, w, c]` → `[n, h, w, c]`.
public func addingNearestUpsampled(_ source: Tensor, to target: Tensor) -> Tensor {
  precondition(source.rank == 4 && target.rank == 4 && source.shape[0] == target.shape[0]
                 && source.shape[3] == target.shape[3] && source.shape[1] >= 1 && source.shape[2] >= 1,
               "addingNearestUpsampled: source \(source.shape) and target \(target.shape) must be NHWC maps of the "
                 + "same batch and channels.")
  let (n, hs, ws, c) = (source.shape[0], source.shape[1], source.shape[2], source.shape[3])
  let (h, w) = (target.shape[1], target.shape[2])
  let sourceRow = (0..<h).map { nearestSourceIndex($0, inputSize: hs, outputSize: h) }
  let sourceColumn = (0..<w).map { nearestSourceIndex($0, inputSize: ws, outputSize: w) }
  var result = target
  source.scalars.withUnsafeBufferPointer { sb in
    result.scalars.withUnsafeMutableBufferPointer { rb in
      let (sp, rp) = (sb.baseAddress!, rb.baseAddress!)
      parallelFor(0..<(n * h), minimumChunk: max(1, 16_384 / max(1, w * c))) { rows in
        for row in rows {
          let image = row / h, y = row - image * h
          let from = sp + (image * hs + sourceRow[y]) * ws * c
          let to = rp + row * w * c
          for x in 0..<w {
            let (s, t) = (from + sourceColumn[x] * c, to + x * c)
            for channel in 0..<c { t[channel] += s[channel] }
          }
        }
      }
    }
  }
  return result
}

/// ∂L/∂source of `addingNearestUpsampled` from ∂L/∂result `dy` `[n, h, w, c]`: each output gradient added to its
/// source pixel (∂L/∂target is `dy` itself). `sourceShape` is `[n, hs, ws, c]`.
public func nearestUpsampledSourceGradient(_ dy: Tensor, sourceShape: [Int]) -> Tensor {
  precondition(dy.rank == 4 && sourceShape.count == 4 && dy.shape[0] == sourceShape[0] && dy.shape[3] == sourceShape[3],
               "nearestUpsampledSourceGradient: dy \(dy.shape) does not match the source \(sourceShape).")
  let (n, hs, ws, c) = (sourceShape[0], sourceShape[1], sourceShape[2], sourceShape[3])
  let (h, w) = (dy.shape[1], dy.shape[2])
  // Per source row the output rows that read it, so each thread owns whole source rows (no write conflicts).
  var outputRows = [[Int]](repeating: [], count: hs)
  for y in 0..<h { outputRows[nearestSourceIndex(y, inputSize: hs, outputSize: h)].append(y) }
  let sourceColumn = (0..<w).map { nearestSourceIndex($0, inputSize: ws, outputSize: w) }
  var dx = Tensor.zeros(sourceShape)
  dy.scalars.withUnsafeBufferPointer { db in
    dx.scalars.withUnsafeMutableBufferPointer { xb in
      let (dyp, dxp) = (db.baseAddress!, xb.baseAddress!)
      parallelFor(0..<(n * hs), minimumChunk: max(1, 16_384 / max(1, 2 * ws * c))) { rows in
        for row in rows {
          let image = row / hs, sy = row - image * hs
          let to = dxp + row * ws * c
          for y in outputRows[sy] {
            let from = dyp + (image * h + y) * w * c
            for x in 0..<w {
              let (s, t) = (from + x * c, to + sourceColumn[x] * c)
              for channel in 0..<c { t[channel] += s[channel] }
            }
          }
        }
      }
    }
  }
  return dx
}
