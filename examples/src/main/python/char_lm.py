"""Character-level LSTM language model: the PyTorch twin of CharLanguageModel.java.

The same data, model, optimizer, schedule, clipping, validation, checkpoint and sampling, written
as a PyTorch user would; kept here to compare the two APIs line for line (README, "Examples").
Run: python char_lm.py ../resources/org/seq4j/examples/data/female-first-names.txt
"""
import math
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

random.seed(0)
names = open(sys.argv[1]).read().lower().splitlines()
random.shuffle(names)  # the file is sorted: validate on names, not on letters
text = "\n".join(names)
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
data = torch.tensor([index[c] for c in text])
train, val = data[: int(0.9 * len(data))], data[int(0.9 * len(data)):]
T, N, HIDDEN, STEPS, WARMUP = 64, 32, 256, 600, 50
torch.manual_seed(0)


class CharLM(nn.Module):
    def __init__(self, vocabulary, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, 64)
        self.lstm = nn.LSTM(64, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, vocabulary)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def batch(source):
    starts = torch.randint(0, len(source) - T - 1, (N,))
    x = torch.stack([source[s : s + T] for s in starts])
    y = torch.stack([source[s + 1 : s + T + 1] for s in starts])
    return x, y


model = CharLM(len(chars), HIDDEN)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / WARMUP if s < WARMUP
                                             else 0.5 * (1 + math.cos(math.pi * (s - WARMUP) / (STEPS - WARMUP))))
for step in range(STEPS):
    x, y = batch(train)
    loss = F.cross_entropy(model(x)[0].reshape(-1, len(chars)), y.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()
    if step % 100 == 0:
        model.eval()
        with torch.no_grad():
            vx, vy = batch(val)
            val_loss = F.cross_entropy(model(vx)[0].reshape(-1, len(chars)), vy.reshape(-1))
        model.train()
        print(f"step {step}  loss {loss.item():.3f}  validation {val_loss.item():.3f}")

save_file(model.state_dict(), "char-lm.safetensors")
restored = CharLM(len(chars), HIDDEN)
restored.load_state_dict(load_file("char-lm.safetensors"))
restored.eval()
with torch.no_grad():
    x, state, sampled = torch.tensor([[index["\n"]]]), None, []
    for _ in range(200):
        logits, state = restored(x, state)
        x = torch.multinomial(F.softmax(logits[0, -1] / 0.8, dim=-1), 1).view(1, 1)
        sampled.append(chars[x.item()])
print("".join(sampled))
