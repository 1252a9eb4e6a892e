// Opening the dataset a pretraining config's `data` section names (the dataset type itself is in Datasets).
import Datasets

extension PretrainDataset {
  /// Opens the dataset `data` names (`split` for `fashion-mnist` and `cifar10`); fails before training if the
  /// data is missing. `synthetic` makes 64 generated 32×32 images.
  public static func open(_ data: PretrainConfig.DataSection, channels: Int,
                          split: DatasetSplit = .train) throws -> PretrainDataset {
    try open(kind: data.kind, path: data.path, limit: data.limit, channels: channels, split: split)
  }
}
