"""training.optim.LazyAdam: Adam where every entry has a gradient; per-entry lazy moments where not."""
import pytest

torch = pytest.importorskip("torch")

from training.optim import LazyAdam  # noqa: E402


def test_equals_adam_on_dense_gradients():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 7))
    b = torch.nn.Parameter(a.detach().clone())
    oa, ob = torch.optim.Adam([a], lr=1e-2), LazyAdam([b], lr=1e-2)
    for k in range(20):
        g = torch.randn(5, 7) + 0.1          # never exactly 0
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_an_isolated_gradient_moves_an_entry_by_about_lr_once():
    """One gradient event on one entry, then zeros: lazy Adam moves it by lr (bias-corrected first
    step) and never again; plain Adam keeps moving it for many steps, ~30 lr in all."""
    lr = 1e-3
    for cls, lo, hi in ((LazyAdam, 0.99 * lr, 1.01 * lr), (torch.optim.Adam, 10 * lr, 100 * lr)):
        p = torch.nn.Parameter(torch.zeros(4))
        opt = cls([p], lr=lr)
        for k in range(200):
            g = torch.zeros(4)
            g[1] = 1.0                        # a dense neighbour: entry 1 is used every step
            if k == 100:
                g[2] = 0.5                    # entry 2 is used once
            p.grad = g
            opt.step()
        moved = -float(p.detach()[2])
        assert lo <= moved <= hi, (cls.__name__, moved)
        assert float(p.detach()[0]) == 0.0             # never used: never moves


def test_state_dict_round_trip():
    p = torch.nn.Parameter(torch.ones(3))
    opt = LazyAdam([p], lr=0.1)
    p.grad = torch.tensor([1.0, 0.0, -1.0])
    opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = LazyAdam([q], lr=0.1)
    opt2.load_state_dict(opt.state_dict())
    for o, x in ((opt, p), (opt2, q)):
        x.grad = torch.tensor([0.5, 0.5, 0.0])
        o.step()
    torch.testing.assert_close(p, q)
    with pytest.raises(ValueError):
        LazyAdam([p], lr=-1)
