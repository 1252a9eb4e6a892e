// The published numbers `simsiam-bench compare` and `report html` check against: the single source of them.
//
// JSON embedded as text (rather than a bundle resource) so the binary works wherever it is copied. Values are
// percentages, as the tables print them. `protocols` holds MMSelfSup v0.8.0's protocol per benchmark as facets
// (PROTOCOLS §2–§5); a reference lists under its own `protocol` only the facets where its numbers were measured
// differently. Each reference names its source. `compare --list` prints them.
extension ReferenceCatalog {
  static let embeddedJSON = #"""
{
  "protocols": {
    "voc07-svm": {
      "dataset": "VOC2007", "image-size": "224", "pooling": "specified",
      "costs": "1,10,100,0.0625,0.03125,0.015625,0.0078125,0.00390625,0.001953125,0.0009765625,0.00048828125,0.000244140625,0.0001220703125,6.103515625e-05,3.0517578125e-05,1.52587890625e-05,7.62939453125e-06,3.814697265625e-06,1.9073486328125e-06",
      "ap": "all-point", "cost-selection": "3-fold-cv"
    },
    "voc07-lowshot-svm": {
      "dataset": "VOC2007", "image-size": "224", "pooling": "specified",
      "costs": "1,10,100,0.0625,0.03125,0.015625,0.0078125,0.00390625,0.001953125,0.0009765625,0.00048828125,0.000244140625,0.0001220703125,6.103515625e-05,3.0517578125e-05,1.52587890625e-05,7.62939453125e-06,3.814697265625e-06,1.9073486328125e-06",
      "ap": "all-point", "cost-selection": "test-mean", "samples": "5"
    },
    "imagenet-linear": { "dataset": "ImageNet-1k", "image-size": "224", "pooling": "specified", "epochs": "90" },
    "places205-linear": { "dataset": "Places205", "image-size": "224", "pooling": "specified", "epochs": "28" },
    "imagenet-knn": { "dataset": "ImageNet-1k", "image-size": "224", "temperature": "0.07" },
    "voc0712-faster-rcnn": { "dataset": "VOC07+12", "detector": "faster-rcnn-r50-c4", "schedule": "24k" },
    "coco-mask-rcnn": { "dataset": "COCO2017", "detector": "mask-rcnn-r50-fpn", "schedule": "1x" },
    "voc12aug-fcn": { "dataset": "VOC12aug", "model": "fcn-r50-d8", "crop": "512", "schedule": "20k" }
  },
  "classes": {
    "VOC2007": ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
                "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
  },
  "references": [
    {
      "name": "mmselfsup-100e",
      "label": "resnet50_8xb32-coslr-100e",
      "title": "MMSelfSup SimSiam ResNet-50, 100 epochs (the seed README)",
      "source": "shared/seed/simsiam-README.md (MMSelfSup configs/selfsup/simsiam/README.md as seeded), row resnet50_8xb32-coslr-100e; differs from v0.8.0 (PROTOCOLS §0)",
      "scores": [
        { "benchmark": "voc07-svm", "metric": "mAP", "layer": "feature5", "values": [84.21] },
        { "benchmark": "voc07-lowshot-svm", "metric": "mAP", "layer": "feature5", "ks": [1, 2, 4, 8, 16, 32, 64, 96],
          "values": [39.71, 49.65, 62.79, 69.97, 74.73, 78.30, 81.06, 82.44] },
        { "benchmark": "imagenet-linear", "metric": "top1",
          "layers": ["feature1", "feature2", "feature3", "feature4", "feature5", "avgpool"],
          "values": [15.85, 34.02, 46.00, 60.90, 67.92, 67.88] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP50", "values": [79.97] },
        { "benchmark": "coco-mask-rcnn", "metric": "mAP", "layers": ["bbox", "segm"], "values": [38.3, 34.4] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP50", "layers": ["bbox", "segm"], "values": [57.6, 54.8] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP75", "layers": ["bbox", "segm"], "values": [41.7, 36.9] },
        { "benchmark": "voc12aug-fcn", "metric": "mIoU", "values": [46.11] }
      ]
    },
    {
      "name": "mmselfsup-200e",
      "label": "resnet50_8xb32-coslr-200e",
      "title": "MMSelfSup SimSiam ResNet-50, 200 epochs (the seed README)",
      "source": "shared/seed/simsiam-README.md (MMSelfSup configs/selfsup/simsiam/README.md as seeded), row resnet50_8xb32-coslr-200e; equals v0.8.0 except AvgPool 69.80 vs 69.84 (PROTOCOLS §0)",
      "scores": [
        { "benchmark": "voc07-svm", "metric": "mAP", "layer": "feature5", "values": [85.20] },
        { "benchmark": "voc07-lowshot-svm", "metric": "mAP", "layer": "feature5", "ks": [1, 2, 4, 8, 16, 32, 64, 96],
          "values": [39.85, 50.44, 63.73, 70.93, 75.74, 79.42, 82.02, 83.44] },
        { "benchmark": "imagenet-linear", "metric": "top1",
          "layers": ["feature1", "feature2", "feature3", "feature4", "feature5", "avgpool"],
          "values": [15.57, 37.21, 47.28, 62.21, 69.85, 69.80] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP50", "values": [79.85] },
        { "benchmark": "coco-mask-rcnn", "metric": "mAP", "layers": ["bbox", "segm"], "values": [38.8, 34.9] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP50", "layers": ["bbox", "segm"], "values": [58.0, 55.3] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP75", "layers": ["bbox", "segm"], "values": [42.3, 37.6] },
        { "benchmark": "voc12aug-fcn", "metric": "mIoU", "values": [46.27] }
      ]
    },
    {
      "name": "mmselfsup-v0.8.0-100e",
      "label": "resnet50_8xb32-coslr-100e (v0.8.0)",
      "title": "MMSelfSup v0.8.0 SimSiam ResNet-50, 100 epochs",
      "source": "open-mmlab/mmselfsup:configs/selfsup/simsiam/README.md@v0.8.0, 100e row (PROTOCOLS §0); same numbers v0.7.0 … 0.x",
      "scores": [
        { "benchmark": "voc07-svm", "metric": "mAP", "layer": "feature5", "values": [84.64] },
        { "benchmark": "voc07-lowshot-svm", "metric": "mAP", "layer": "feature5", "ks": [1, 2, 4, 8, 16, 32, 64, 96],
          "values": [39.65, 49.86, 62.48, 69.50, 74.48, 78.31, 81.06, 82.56] },
        { "benchmark": "imagenet-linear", "metric": "top1",
          "layers": ["feature1", "feature2", "feature3", "feature4", "feature5", "avgpool"],
          "values": [16.27, 33.77, 45.80, 60.83, 68.21, 68.28] },
        { "benchmark": "places205-linear", "metric": "top1",
          "layers": ["feature1", "feature2", "feature3", "feature4", "feature5"],
          "values": [21.32, 35.66, 43.05, 50.79, 53.27] },
        { "benchmark": "imagenet-knn", "metric": "top1", "ks": [10, 20, 100, 200], "values": [57.4, 57.6, 55.8, 54.2] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP50", "values": [79.80] },
        { "benchmark": "coco-mask-rcnn", "metric": "mAP", "layers": ["bbox", "segm"], "values": [38.6, 34.6] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP50", "layers": ["bbox", "segm"], "values": [57.6, 54.8] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP75", "layers": ["bbox", "segm"], "values": [42.3, 36.9] },
        { "benchmark": "voc12aug-fcn", "metric": "mIoU", "values": [48.35] }
      ]
    },
    {
      "name": "mmselfsup-v0.8.0-200e",
      "label": "resnet50_8xb32-coslr-200e (v0.8.0)",
      "title": "MMSelfSup v0.8.0 SimSiam ResNet-50, 200 epochs",
      "source": "open-mmlab/mmselfsup:configs/selfsup/simsiam/README.md@v0.8.0, 200e row (PROTOCOLS §0); metafile.yml gives top-1 69.84",
      "scores": [
        { "benchmark": "voc07-svm", "metric": "mAP", "layer": "feature5", "values": [85.20] },
        { "benchmark": "voc07-lowshot-svm", "metric": "mAP", "layer": "feature5", "ks": [1, 2, 4, 8, 16, 32, 64, 96],
          "values": [39.85, 50.44, 63.73, 70.93, 75.74, 79.42, 82.02, 83.44] },
        { "benchmark": "imagenet-linear", "metric": "top1",
          "layers": ["feature1", "feature2", "feature3", "feature4", "feature5", "avgpool"],
          "values": [15.57, 37.21, 47.28, 62.21, 69.85, 69.84] },
        { "benchmark": "places205-linear", "metric": "top1",
          "layers": ["feature1", "feature2", "feature3", "feature4", "feature5"],
          "values": [21.17, 35.85, 43.49, 50.99, 54.10] },
        { "benchmark": "imagenet-knn", "metric": "top1", "ks": [10, 20, 100, 200], "values": [60.2, 60.4, 58.8, 57.4] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP50", "values": [79.85] },
        { "benchmark": "coco-mask-rcnn", "metric": "mAP", "layers": ["bbox", "segm"], "values": [38.8, 34.9] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP50", "layers": ["bbox", "segm"], "values": [58.0, 55.3] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP75", "layers": ["bbox", "segm"], "values": [42.3, 37.6] },
        { "benchmark": "voc12aug-fcn", "metric": "mIoU", "values": [46.27] }
      ]
    },
    {
      "name": "paper-100e",
      "label": "SimSiam paper, 100 epochs",
      "title": "Chen & He, CVPR 2021: ImageNet linear, ResNet-50, 100-epoch pretraining",
      "source": "arXiv 2011.10566 Table 4 (PROTOCOLS §7); the official code's lr 1.6 (= MMSelfSup), not Appendix A's 0.32",
      "scores": [ { "benchmark": "imagenet-linear", "metric": "top1", "layer": "avgpool", "values": [68.1] } ]
    },
    {
      "name": "paper-200e",
      "label": "SimSiam paper, 200 epochs",
      "title": "Chen & He, CVPR 2021: ImageNet linear and transfer (SimSiam, base), 200-epoch pretraining",
      "source": "arXiv 2011.10566 Table 4 (linear) and Table 5, row 'SimSiam, base' (C4 detectors, MoCo's detectron2 code, VOC07 trainval + VOC12 train, VOC averaged over 5 trials) (PROTOCOLS §7)",
      "protocol": {
        "voc0712-faster-rcnn": { "dataset": "VOC07trainval+VOC12train", "codebase": "moco-detectron2" },
        "coco-mask-rcnn": { "detector": "mask-rcnn-r50-c4", "codebase": "moco-detectron2" }
      },
      "scores": [
        { "benchmark": "imagenet-linear", "metric": "top1", "layer": "avgpool", "values": [70.0] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP50", "values": [82.0] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "mAP", "values": [56.4] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP75", "values": [62.8] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP50", "layers": ["bbox", "segm"], "values": [57.5, 54.2] },
        { "benchmark": "coco-mask-rcnn", "metric": "mAP", "layers": ["bbox", "segm"], "values": [37.9, 33.2] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP75", "layers": ["bbox", "segm"], "values": [40.9, 35.2] }
      ]
    },
    {
      "name": "paper-200e-optimal",
      "label": "SimSiam paper, 200 epochs, optimal pre-training recipe",
      "title": "Chen & He, CVPR 2021: transfer of the backbone pre-trained with the searched recipe (lr 0.5, wd 1e-5); detectors fine-tuned as for SimSiam, base",
      "source": "arXiv 2011.10566 Table 5, row 'SimSiam, optimal': lr 0.5 and wd 1e-5 are the pre-training's, the C4 detector fine-tuning is the base row's (PROTOCOLS §7)",
      "protocol": {
        "voc0712-faster-rcnn": { "dataset": "VOC07trainval+VOC12train", "codebase": "moco-detectron2",
                                 "pretrain": "lr0.5-wd1e-5" },
        "coco-mask-rcnn": { "detector": "mask-rcnn-r50-c4", "codebase": "moco-detectron2", "pretrain": "lr0.5-wd1e-5" }
      },
      "scores": [
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP50", "values": [82.4] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "mAP", "values": [57.0] },
        { "benchmark": "voc0712-faster-rcnn", "metric": "AP75", "values": [63.7] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP50", "layers": ["bbox", "segm"], "values": [59.3, 56.0] },
        { "benchmark": "coco-mask-rcnn", "metric": "mAP", "layers": ["bbox", "segm"], "values": [39.2, 34.4] },
        { "benchmark": "coco-mask-rcnn", "metric": "AP75", "layers": ["bbox", "segm"], "values": [42.1, 36.7] }
      ]
    },
    {
      "name": "paper-400e",
      "label": "SimSiam paper, 400 epochs",
      "title": "Chen & He, CVPR 2021: ImageNet linear, 400-epoch pretraining",
      "source": "arXiv 2011.10566 Table 4 (PROTOCOLS §7)",
      "scores": [ { "benchmark": "imagenet-linear", "metric": "top1", "layer": "avgpool", "values": [70.8] } ]
    },
    {
      "name": "paper-800e",
      "label": "SimSiam paper, 800 epochs",
      "title": "Chen & He, CVPR 2021: ImageNet linear, 800-epoch pretraining",
      "source": "arXiv 2011.10566 Table 4 (PROTOCOLS §7)",
      "scores": [ { "benchmark": "imagenet-linear", "metric": "top1", "layer": "avgpool", "values": [71.3] } ]
    },
    {
      "name": "official-100e-bs256",
      "label": "facebookresearch/simsiam, 100 epochs, batch 256",
      "title": "Official SimSiam repository: ImageNet linear after 100 epochs at batch 256",
      "source": "facebookresearch/simsiam README@a7bc177 (8 V100, PyTorch 1.7.0) (PROTOCOLS §7)",
      "scores": [ { "benchmark": "imagenet-linear", "metric": "top1", "layer": "avgpool", "values": [68.3] } ]
    },
    {
      "name": "official-100e-bs512",
      "label": "facebookresearch/simsiam, 100 epochs, batch 512",
      "title": "Official SimSiam repository: ImageNet linear after 100 epochs at batch 512",
      "source": "facebookresearch/simsiam README@a7bc177 (PROTOCOLS §7)",
      "scores": [ { "benchmark": "imagenet-linear", "metric": "top1", "layer": "avgpool", "values": [68.1] } ]
    }
  ]
}
"""#
}
