"""The Cu-Li structure recipe: Miller indices, slab geometry, fixed layers, vacancies, adatoms, interfaces."""

from __future__ import annotations

import numpy as np
import pytest
from ase.neighborlist import neighbor_list
from qallegro.culi import structures as st
from qallegro.culi.interfaces import build_interface, interface_gap
from qallegro.paper import values


@pytest.mark.parametrize("element", ["Li", "Cu"])
def test_thirteen_distinct_miller_indices_up_to_333(element: str) -> None:
    hkls = st.miller_indices(element, 3)
    assert len(hkls) == values()["culi_dataset"]["slabs_per_element"] == 13
    assert len(set(hkls)) == 13 and max(max(h) for h in hkls) == 3
    assert {(1, 0, 0), (1, 1, 0), (1, 1, 1), (3, 3, 2)} <= set(hkls)


@pytest.mark.parametrize("element,hkl", [("Li", (1, 1, 0)), ("Cu", (1, 1, 1)), ("Cu", (3, 2, 1)), ("Li", (3, 3, 2))])
def test_slab_vacuum_thickness_and_fixed_layers(element: str, hkl: tuple[int, int, int]) -> None:
    slab = st.make_slab(element, hkl, thickness=12.0, vacuum=15.0, free_layers=2, min_layers=5)
    z = slab.positions[:, 2]
    # 15 Å vacuum on both sides of the atoms, c normal to the surface
    assert z.min() == pytest.approx(15.0, abs=1e-6)
    assert slab.cell[2, 2] - z.max() == pytest.approx(15.0, abs=1e-6)
    assert np.allclose(slab.cell[2, :2], 0) and np.allclose(slab.cell[:2, 2], 0)
    assert slab.info["thickness"] >= 12.0
    # the plane normal of (hkl) in the cubic frame is the cell's c: plane spacing from the bulk formula
    d = st.interlayer_spacing(element, hkl)
    layers = slab.arrays["layer"]
    n = layers.max() + 1
    heights = np.array([z[layers == k].mean() for k in range(n)])
    assert np.allclose(np.diff(heights), d, atol=1e-6)
    # only the outer two planes on each side move
    fixed = slab.arrays["fixed"]
    assert not fixed[(layers < 2) | (layers >= n - 2)].any()
    assert fixed[(layers >= 2) & (layers < n - 2)].all()
    assert sorted(slab.constraints[0].get_indices().tolist()) == np.flatnonzero(fixed).tolist()
    # in-plane vectors at least 5 Å, and the bulk coordination inside
    assert (slab.cell.lengths()[:2] >= 5.0 - 1e-9).all()
    # atoms farther than the coordination cut-off from both surfaces have the bulk coordination
    kind, a = st.BULK[element]
    cn = st.coordination_numbers(slab, element)
    deep = (z - z.min() > st.CN_CUTOFF[kind] * a) & (z.max() - z > st.CN_CUTOFF[kind] * a)
    assert deep.any() and (cn[deep] == st.BULK_CN[kind]).all()
    assert (cn[layers == n - 1] < st.BULK_CN[kind]).all()


def test_symmetric_bulk_terminated_slab_is_stoichiometric_and_nearest_neighbours_bulk() -> None:
    slab = st.make_slab("Cu", (1, 1, 0), thickness=10.0)
    d = neighbor_list("d", slab, 3.0)
    assert d.min() == pytest.approx(3.63 / np.sqrt(2), abs=1e-6)
    assert set(slab.get_chemical_symbols()) == {"Cu"}


def test_surface_and_supercell_vacancies_remove_one_outermost_atom_per_coordination() -> None:
    slab = st.make_slab("Cu", (1, 1, 0), thickness=8.0)
    vacs = st.surface_vacancies(slab)
    cns = [v.info["vacancy_cn"] for v in vacs]
    assert cns == [7, 11]  # fcc(110): top row CN 7, second plane CN 11
    for vac in vacs:
        assert len(vac) == len(slab) - 1
        assert vac.info["category"] == "surface_vacancy"
    top_z = slab.positions[:, 2].max()
    # the CN-7 vacancy empties one site of the top plane
    assert np.sum(np.isclose(vacs[0].positions[:, 2], top_z)) == np.sum(np.isclose(slab.positions[:, 2], top_z)) - 1
    big = st.supercell(slab, (2, 2, 1))
    assert len(big) == 4 * len(slab)
    assert np.allclose(big.cell[:2], 2 * slab.cell[:2])
    assert [v.info["vacancy_cn"] for v in st.surface_vacancies(big)] == [7, 11]


def test_adatoms_two_angstrom_above_supercell_at_all_site_kinds() -> None:
    slab = st.make_slab("Cu", (1, 1, 1), thickness=7.0)
    big = st.supercell(slab, (2, 2, 1))
    sites = st.adatom_sites(big, height=2.0)
    kinds = {k for k, _ in sites}
    assert kinds == {"ontop", "bridge", "hollow"}
    for kind, pos in sites:
        ad = st.add_adatom(big, "Li", pos, kind)
        assert len(ad) == len(big) + 1 and ad.get_chemical_symbols()[-1] == "Li"
        assert not ad.arrays["fixed"][-1]
        assert st.adatom_height(ad) == pytest.approx(2.0, abs=1e-6)  # (111) is flat: every site is 2 Å up
        nearest = neighbor_list("d", ad, 3.5)[neighbor_list("i", ad, 3.5) == len(ad) - 1].min()
        expected = {"ontop": 2.0, "bridge": np.hypot(2.0, 3.63 / np.sqrt(8)),
                    "hollow": np.hypot(2.0, 3.63 / np.sqrt(6))}[kind]
        assert nearest == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("hkl", [(1, 0, 0), (1, 1, 0), (1, 1, 1), (3, 3, 2)])
def test_interface_area_match_gap_and_composition(hkl: tuple[int, int, int]) -> None:
    atoms = build_interface(hkl, li_thickness=5.0, cu_thickness=5.0, gap=3.0, vacuum=15.0, area_tol=0.09)
    assert atoms is not None
    assert abs(atoms.info["area_mismatch"]) <= 0.09
    assert interface_gap(atoms) == pytest.approx(3.0, abs=1e-6)
    region = atoms.arrays["region"]
    assert set(np.array(atoms.get_chemical_symbols())[region == 0]) == {"Cu"}
    assert set(np.array(atoms.get_chemical_symbols())[region == 1]) == {"Li"}
    # no atom closer than the Cu nearest-neighbour distance (the gap does not squeeze the metals)
    assert neighbor_list("d", atoms, 3.0).min() >= 3.63 / np.sqrt(2) - 1e-6
    # 15 Å vacuum between the film top and the substrate's periodic image
    z = atoms.positions[:, 2]
    assert atoms.cell[2, 2] - (z.max() - z.min()) == pytest.approx(15.0, abs=1e-6)


def test_interface_is_the_smallest_matching_combination() -> None:
    """No smaller Li(100)/Cu(100) supercell pair is within 9% area: check by brute force over integer areas."""
    atoms = build_interface((1, 0, 0), 5.0, 5.0)
    li = st.oriented_slab("Li", (1, 0, 0), 1, 5.0)
    cu = st.oriented_slab("Cu", (1, 0, 0), 1, 5.0)
    a_li = np.linalg.norm(np.cross(li.cell[0], li.cell[1]))
    a_cu = np.linalg.norm(np.cross(cu.cell[0], cu.cell[1]))
    area = atoms.info["area"]
    n_cu = round(area / a_cu)
    assert n_cu * a_cu == pytest.approx(area, rel=1e-6)
    # every smaller multiple of the Cu cell lacks a Li multiple with area ratio within 9% (ZSL's criterion)
    # and a square-lattice superlattice of that size (Li(100) and Cu(100) are both square)
    for m in range(1, n_cu):
        ok = any(abs(m * a_cu / (k * a_li) - 1) < 0.09 and _is_sum_of_squares(m) and _is_sum_of_squares(k)
                 for k in range(1, 50))
        assert not ok, m


def _is_sum_of_squares(n: int) -> bool:
    return any(round((n - i * i) ** 0.5) ** 2 == n - i * i for i in range(int(n**0.5) + 1))
