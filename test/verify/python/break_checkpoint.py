"""Breaks copies of a TP=2 PP=2 EP=2 tiny-Mixtral checkpoint with real torch (load, edit, torch.save).

Usage: break_checkpoint.py DIR... ; the last path component of each DIR names the breakage.
"""
import sys, glob, torch
def path(root, t, p, e): return f"{root}/release/mp_rank_0{t}_00{p}_00{e}/model_optim_rng.pt"
def edit(p, fn):
    sd = torch.load(p, map_location="cpu"); fn(sd); torch.save(sd, p)
def gateup(root):
    # layer 1 (PP stage 0), global expert 5 = EP rank 1, local 1; TP rank 1's [gate; up] saved as [up; gate]
    def f(sd):
        k = "decoder.layers.1.mlp.experts.local_experts.1.linear_fc1.weight"; w = sd["model"][k]; h = w.shape[0] // 2
        sd["model"][k] = torch.cat([w[h:], w[:h]]).clone()
    edit(path(root, 1, 0, 1), f)
def experts(root):
    # layer 0: global experts 0 (EP 0, local 0) and 6 (EP 1, local 2) exchanged on every TP rank
    for t in range(2):
        a, b = torch.load(path(root, t, 0, 0), map_location="cpu"), torch.load(path(root, t, 0, 1), map_location="cpu")
        for w in ("linear_fc1.weight", "linear_fc2.weight"):
            ka, kb = f"decoder.layers.0.mlp.experts.local_experts.0.{w}", f"decoder.layers.0.mlp.experts.local_experts.2.{w}"
            a["model"][ka], b["model"][kb] = b["model"][kb].clone(), a["model"][ka].clone()
        torch.save(a, path(root, t, 0, 0)); torch.save(b, path(root, t, 0, 1))
def qkv(root):
    # layer 2 (PP stage 1, local 0): [all q; all k; all v] instead of interleaved per query group
    def f(sd):
        k = "decoder.layers.0.self_attention.linear_qkv.weight"; g = sd["model"][k].view(2, 4, 8, 64)
        sd["model"][k] = torch.cat([g[:, :2].reshape(-1, 64), g[:, 2].reshape(-1, 64), g[:, 3].reshape(-1, 64)]).clone()
    for t in range(2):
        for e in range(2): edit(path(root, t, 1, e), f)
def vocab(root):
    # each TP rank padded on its own: rank t = real rows [125t, 125t + 125) + 3 copies, instead of [128t, 128t + 128)
    for p, key in ((0, "embedding.word_embeddings.weight"), (1, "output_layer.weight")):
        for e in range(2):
            parts = [torch.load(path(root, t, p, e), map_location="cpu") for t in range(2)]
            real = torch.cat([s["model"][key] for s in parts])[:250]
            for t, s in enumerate(parts):
                mine = real[125 * t : 125 * t + 125]
                s["model"][key] = torch.cat([mine, mine[-1:].expand(3, -1)]).clone()
                torch.save(s, path(root, t, p, e))
def router(root):
    # weights untouched (verify exact passes); args say Megatron's pre-softmax router: softmax, top-k, no renormalisation
    for p in glob.glob(f"{root}/release/*/model_optim_rng.pt"):
        sd = torch.load(p, map_location="cpu"); sd["args"].moe_router_pre_softmax = True; torch.save(sd, p)
for root in sys.argv[1:]:
    globals()[root.rsplit("/", 1)[1]](root)
