"""PyTorch side of EngineBench's FCN cases (f) and (g): plain-torch modules equivalent to mmseg 0.x's
EncoderDecoder(backbone=ResNet, decode_head=FCNHead, auxiliary_head=FCNHead) and its training loss, no mmseg,
mmcv or torchvision needed. Used by torch_bench.py (--only f / --only g).

  backbone   mmseg ResNet (mmseg/models/backbones/resnet.py + utils/res_layer.py), style='pytorch', plain
             (torchvision) stem as ours: ImageNet stem conv1 7x7/2 + BN + ReLU + MaxPool(3, 2, 1), or the CIFAR stem
             (3x3/1, no max-pool). Per stage a stride and a dilation; the stride sits on the 3x3 conv (Bottleneck
             conv2, BasicBlock conv1) and on the 1x1 downsample; the 3x3 convs of a block use padding = dilation =
             the block's dilation, and contract_dilation gives a stage's FIRST block dilation d/2 when d > 1.
  heads      mmseg FCNHead: num_convs ConvModules (3x3 conv without bias, BN, ReLU), with concat_input a conv_cat
             ConvModule over torch.cat([x, convs(x)], 1), then nn.Dropout2d(0.1) and the 1x1 conv_seg (with bias).
             Decode head on layer4, auxiliary head on layer3.
  loss       BaseDecodeHead.losses: F.interpolate(logits, size=label size, mode='bilinear', align_corners=False),
             F.cross_entropy(reduction='none', ignore_index=255).mean() over ALL pixels (avg_non_ignore=False),
             times the loss weight (1.0 decode, 0.4 auxiliary); total = decode + auxiliary.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = 255

# id -> (classes, batch, crop, in_channels, backbone kwargs, decode channels, auxiliary channels)
FCN_CASES = {
    # mmseg configs/_base_/models/fcn_r50-d8.py on a 512x512 crop (VOC / ADE schedules), 21 classes, batch 2.
    "f": dict(classes=21, batch=2, crop=512, in_channels=3,
              backbone=dict(depth=50, width=1.0, cifar_stem=False, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                            contract_dilation=True),
              decode_channels=512, auxiliary_channels=256),
    # configs/benchmarks/mmsegmentation/scenes/fcn_quick-d8_scenes.yaml: the quick ResNet-18 (CIFAR stem, width
    # 0.25, 1 channel), strides (1, 2, 2, 2), heads 128 / 64, 11 classes, 64x64 crops, batch 8.
    "g": dict(classes=11, batch=8, crop=64, in_channels=1,
              backbone=dict(depth=18, width=0.25, cifar_stem=True, strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1),
                            contract_dilation=True),
              decode_channels=128, auxiliary_channels=64),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)


class DilatedResNet(nn.Module):
    """Returns (layer3 output, layer4 output): the auxiliary and decode heads' inputs."""

    def __init__(self, depth, width, cifar_stem, strides, dilations, contract_dilation, in_channels):
        super().__init__()
        block, counts = {18: (BasicBlock, (2, 2, 2, 2)), 50: (Bottleneck, (3, 4, 6, 3))}[depth]
        widths = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        self.conv1 = (nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False) if cifar_stem
                      else nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False))
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for i, (planes, blocks) in enumerate(zip(widths, counts)):
            downsample = None
            if strides[i] != 1 or cin != planes * block.expansion:
                downsample = nn.Sequential(nn.Conv2d(cin, planes * block.expansion, 1, strides[i], bias=False),
                                           nn.BatchNorm2d(planes * block.expansion))
            d = dilations[i]
            first = d // 2 if (d > 1 and contract_dilation) else d
            layers = [block(cin, planes, strides[i], first, downsample)]
            cin = planes * block.expansion
            layers += [block(cin, planes, 1, d, None) for _ in range(1, blocks)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.channels = [widths[2] * block.expansion, widths[3] * block.expansion]

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        f4 = self.layer3(self.layer2(self.layer1(x)))
        return f4, self.layer4(f4)


class ConvModule(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class FCNHead(nn.Module):
    def __init__(self, cin, channels, num_convs, concat_input, classes, dropout=0.1):
        super().__init__()
        self.convs = nn.Sequential(*[ConvModule(cin if i == 0 else channels, channels) for i in range(num_convs)])
        self.conv_cat = ConvModule(cin + channels, channels) if concat_input else None
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(channels, classes, 1)

    def forward(self, x):
        out = self.convs(x)
        if self.conv_cat is not None:
            out = self.conv_cat(torch.cat([x, out], dim=1))
        return self.conv_seg(self.dropout(out))


class FCNSegmentor(nn.Module):
    def __init__(self, classes, in_channels, backbone, decode_channels, auxiliary_channels):
        super().__init__()
        self.backbone = DilatedResNet(in_channels=in_channels, **backbone)
        c4, c5 = self.backbone.channels
        self.decode_head = FCNHead(c5, decode_channels, 2, True, classes)
        self.auxiliary_head = FCNHead(c4, auxiliary_channels, 1, False, classes)

    def loss(self, images, labels):
        f4, f5 = self.backbone(images)
        return seg_loss(self.decode_head(f5), labels, 1.0) + seg_loss(self.auxiliary_head(f4), labels, 0.4)


def seg_loss(logits, labels, weight):
    resized = F.interpolate(logits, size=labels.shape[1:], mode="bilinear", align_corners=False)
    return weight * F.cross_entropy(resized, labels, reduction="none", ignore_index=IGNORE).mean()


def make_fcn_step(case, channels_last):
    """One training iteration as a closure over the model (train mode) and a random batch (labels with ~15 % 255),
    and the model's count of trainable scalars (EngineBench prints it next to ours)."""
    spec = FCN_CASES[case]
    model = FCNSegmentor(spec["classes"], spec["in_channels"], spec["backbone"], spec["decode_channels"],
                         spec["auxiliary_channels"]).train()
    n, crop = spec["batch"], spec["crop"]
    images = torch.randn(n, spec["in_channels"], crop, crop)
    labels = torch.randint(0, spec["classes"], (n, crop, crop))
    labels[torch.rand(n, crop, crop) < 0.15] = IGNORE
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        loss = model.loss(images, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, sum(p.numel() for p in model.parameters())
