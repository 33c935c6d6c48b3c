# Source: HPCI-Lab/yProvML, examples/prov4ml_torch.py at commit 016a43f86ee2d38668344a27d30d73f105c6237d
# (the 2.x/3.x API: label first, metric-file keywords, custom contexts, crate_ro_crate).
# Changed: the import (yprov_wf instead of prov4ml; sys.path line dropped); MNIST (torchvision, not
# installable here, and a download) replaced by sklearn's bundled load_digits as tensors (8x8 inputs);
# prov4ml.wrappers.indexed_dataset.IndexedDatasetWrapper (a yProv4ML data utility, not a provenance call)
# defined below; log_source_code's path (a file on the author's machine) is this script. Every other
# prov4ml call is as in the original.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from tqdm import tqdm

import yprov_wf as prov4ml


class IndexedDatasetWrapper(Dataset):  # as prov4ml.wrappers.indexed_dataset: (index, sample)
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        return idx, self.dataset[idx]


PATH_DATASETS = "./data"
BATCH_SIZE = 16
EPOCHS = 2
DEVICE = "cpu"

TYPE = prov4ml.MetricsType.ZARR
COMP = False
prov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name=f"{TYPE}_{COMP}", 
    provenance_save_dir="prov",
    save_after_n_logs=100,
    collect_all_processes=True, 
    disable_codecarbon=True, 
    metrics_file_type=TYPE,
    use_compressor=COMP
)

prov4ml.log_source_code(__file__)
prov4ml.log_execution_command("python /workspace/MetricsType.ZARR_False_0/artifacts/prov4ml_torch.py")

prov4ml.create_context("TRAINING_LOD2", prov4ml.Context.TRAINING)
prov4ml.create_context("TRAINING_LOD3", prov4ml.Context.TRAINING_LOD2)

class MNISTModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Sequential(
            torch.nn.Linear(8 * 8, 10), 
            torch.nn.ReLU(),
        )

    def forward(self, x):
        return self.model(x.view(x.size(0), -1))
    
mnist_model = MNISTModel().to(DEVICE)

def tform(x):  # stands in for the torchvision transforms.Compose([...]) of the original
    return x / 16.0
# log the dataset transformation as one-time parameter
prov4ml.log_param("dataset transformation", tform)

digits = load_digits()
train_ds = TensorDataset(tform(torch.tensor(digits.data[:200], dtype=torch.float32)), torch.tensor(digits.target[:200]))
train_ds = IndexedDatasetWrapper(Subset(train_ds, range(BATCH_SIZE*5)))
train_loader = DataLoader(train_ds, batch_size=BATCH_SIZE, shuffle=True)
prov4ml.log_dataset("train_dataset", train_loader)

test_ds = TensorDataset(tform(torch.tensor(digits.data[200:400], dtype=torch.float32)), torch.tensor(digits.target[200:400]))
test_ds = IndexedDatasetWrapper(Subset(test_ds, range(BATCH_SIZE*5)))
test_loader = DataLoader(test_ds, batch_size=BATCH_SIZE)
prov4ml.log_dataset("val_dataset", test_loader)

optim = torch.optim.Adam(mnist_model.parameters(), lr=0.001)
prov4ml.log_param("optimizer", "Adam")

loss_fn = nn.MSELoss().to(DEVICE)
prov4ml.log_param("loss_fn", "MSELoss", prov4ml.Context.TRAINING_LOD2)

losses = []
for epoch in range(EPOCHS):
    mnist_model.train()
    for indices, (x, y) in tqdm(train_loader):
        x, y = x.to(DEVICE), y.to(DEVICE)
        optim.zero_grad()
        y_hat = mnist_model(x)
        y = F.one_hot(y, 10).float()
        loss = loss_fn(y_hat, y)
        loss.backward()
        optim.step()
        losses.append(loss.item())
    
        # log system and carbon metrics (once per epoch), as well as the execution time
        prov4ml.log_metric("MSE", loss.item(), context=prov4ml.Context.TRAINING, step=epoch)
        # prov4ml.log_metric("Indices", indices.tolist(), context=prov4ml.Context.TRAINING_LOD2, step=epoch)
        # prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_system_metrics(prov4ml.Context.TRAINING, step=epoch)
    # save incremental model versions
    prov4ml.save_model_version(f"mnist_model_version", mnist_model, prov4ml.Context.MODELS, epoch)

    mnist_model.eval()
    # mnist_model.cpu()
    for indices, (x, y) in tqdm(test_loader):
        x, y = x.to(DEVICE), y.to(DEVICE)
        y_hat = mnist_model(x)
        y2 = F.one_hot(y, 10).float()
        loss = loss_fn(y_hat, y2)

        prov4ml.log_metric("MSE", loss.item(), prov4ml.Context.VALIDATION, step=epoch)
        # prov4ml.log_metric("Indices", indices, context=prov4ml.Context.TRAINING_LOD2, step=epoch)

prov4ml.log_model("mnist_model_final", mnist_model, log_model_layers=True, is_input=False)

prov4ml.end_run(
    create_graph=True, 
    create_svg=True, 
    crate_ro_crate=True
)
