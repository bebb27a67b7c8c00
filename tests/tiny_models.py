"""Tiny models and batches shared by the LoRA / peft tests: built from a config, no download, seconds on CPU."""

import torch


def tiny_bert(vocab_size: int = 50):
    """A 2-layer, 16-wide BERT sequence classifier with 2 labels, seeded, in eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, num_labels=2)  # fmt: skip
    return BertForSequenceClassification(cfg).eval()


def tiny_batch():
    """Four random token sequences of length 7 and their labels."""
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 50, (4, 7), generator=g), torch.tensor([0, 1, 1, 0])  # [B,T], [B]


def train_steps(model, ids, labels, steps=3, lr=1e-2):
    """A few AdamW steps on the trainable parameters; returns the model in eval mode."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()
