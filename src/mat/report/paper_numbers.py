"""The paper's published Tables 1-3 (means), printed beside our numbers in claims.md so a reader can
compare, and used to show what the paper's own table implies for each claim in its text.

Keys follow the table CSV columns (method keys, `val_loss_at_b1`, `computation_pflops`, ...).
"""

from __future__ import annotations

PAPER_BUDGETS_PFLOPS = {"table1": (10, 15, 20), "table2": (200, 400, 600)}

PAPER_TABLES: dict[str, dict[str, dict[str, float]]] = {
    "table1": {  # BERT on WikiText-2
        "vanilla": {"val_loss_at_b1": 5.39, "val_loss_at_b2": 4.75, "val_loss_at_b3": 4.48, "test_loss": 4.41, "computation_pflops": 28.70},
        "rand": {"val_loss_at_b1": 5.65, "val_loss_at_b2": 5.11, "val_loss_at_b3": 4.96, "test_loss": 4.82, "computation_pflops": 21.53},
        "multirate": {"val_loss_at_b1": 4.93, "val_loss_at_b2": 4.57, "val_loss_at_b3": 4.52, "test_loss": 4.48, "computation_pflops": 19.46},
        "mat": {"val_loss_at_b1": 4.46, "val_loss_at_b2": 4.41, "val_loss_at_b3": 4.35, "test_loss": 4.27, "computation_pflops": 16.50},
    },
    "table2": {  # Switch-Transformer on WikiText-103
        "vanilla": {"val_loss_at_b1": 3.16, "val_loss_at_b2": 2.31, "val_loss_at_b3": 1.93, "test_loss": 1.74, "computation_pflops": 1155.2},
        "rand": {"val_loss_at_b1": 2.92, "val_loss_at_b2": 2.15, "val_loss_at_b3": 2.01, "test_loss": 1.93, "computation_pflops": 837.5},
        "multirate": {"val_loss_at_b1": 2.67, "val_loss_at_b2": 2.02, "val_loss_at_b3": 1.83, "test_loss": 1.77, "computation_pflops": 740.4},
        "mat": {"val_loss_at_b1": 2.34, "val_loss_at_b2": 1.92, "val_loss_at_b3": 1.69, "test_loss": 1.68, "computation_pflops": 614.8},
    },
    "table3": {  # VGG16 on CIFAR-10
        "vanilla": {"pflops_to_train_acc_95": 8.85, "pflops_to_train_acc_99": 12.06, "test_acc_pct": 93.77, "computation_pflops": 17.14},
        "rand": {"pflops_to_train_acc_95": 9.96, "pflops_to_train_acc_99": 13.35, "test_acc_pct": 92.71, "computation_pflops": 18.84},
        "multirate": {"pflops_to_train_acc_95": 7.19, "pflops_to_train_acc_99": 9.75, "test_acc_pct": 93.43, "computation_pflops": 13.35},
        "mat": {"pflops_to_train_acc_95": 5.31, "pflops_to_train_acc_99": 7.21, "test_acc_pct": 93.86, "computation_pflops": 9.03},
    },
}
