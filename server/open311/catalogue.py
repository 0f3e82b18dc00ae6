"""Demo attribute definitions for the Québec City service types (Open311 service definitions)."""

from __future__ import annotations

from typing import Any, Final


def _v(key: str, fr: str, en: str) -> dict[str, str]:
    return {"key": key, "name_fr": fr, "name_en": en}


def _a(
    code: str,
    datatype: str,
    order: int,
    fr: str,
    en: str,
    *,
    required: bool = False,
    variable: bool = True,
    values: tuple[dict[str, str], ...] = (),
    datatype_fr: str | None = None,
    datatype_en: str | None = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "datatype": datatype,
        "order": order,
        "description_fr": fr,
        "description_en": en,
        "required": required,
        "variable": variable,
        "values": list(values),
        "datatype_description_fr": datatype_fr,
        "datatype_description_en": datatype_en,
    }


_BIN_TYPES = (
    _v("garbage", "Ordures (bac vert ou noir)", "Garbage (green or black bin)"),
    _v("recycling", "Recyclage (bac bleu)", "Recycling (blue bin)"),
    _v("organics", "Matières organiques (bac brun)", "Organics (brown bin)"),
)
_YES_NO = (_v("yes", "Oui", "Yes"), _v("no", "Non", "No"))

DEMO_ATTRIBUTES: Final[dict[str, list[dict[str, Any]]]] = {
    "snow-driveway-blocked": [
        _a(
            "blocked-by",
            "singlevaluelist",
            1,
            "Qu'est-ce qui a bloqué l'entrée?",
            "What blocked the driveway?",
            required=True,
            values=(
                _v("plow", "Charrue (déneigement de la rue)", "Plow (street clearing)"),
                _v("snow-blower", "Souffleuse (chargement)", "Snow blower (hauling)"),
                _v("sidewalk-plow", "Chenillette de trottoir", "Sidewalk plow"),
                _v("unknown", "Je ne sais pas", "I don't know"),
            ),
        ),
        _a(
            "ridge-height-cm",
            "number",
            2,
            "Hauteur approximative du cordon de neige (cm)",
            "Approximate height of the snow ridge (cm)",
            datatype_fr="Nombre de centimètres",
            datatype_en="Centimetres",
        ),
        _a(
            "noticed-at",
            "datetime",
            3,
            "Quand avez-vous constaté le problème?",
            "When did you notice the problem?",
        ),
    ],
    "snow-sidewalk": [
        _a(
            "condition",
            "singlevaluelist",
            1,
            "État du trottoir",
            "Sidewalk condition",
            required=True,
            values=(
                _v("snow", "Enneigé", "Snow-covered"),
                _v("ice", "Glacé", "Icy"),
                _v("ridge", "Cordon de neige au coin", "Snow ridge at the corner"),
            ),
        ),
    ],
    "bulky-items": [
        _a(
            "volume-notice",
            "string",
            1,
            "Au plus 3 m³ par collecte; aucun matériau de construction.",
            "At most 3 m³ per pickup; no construction materials.",
            variable=False,
        ),
        _a(
            "item-types",
            "multivaluelist",
            2,
            "Objets à ramasser",
            "Items to pick up",
            required=True,
            values=(
                _v("furniture", "Meubles", "Furniture"),
                _v("mattress", "Matelas ou sommier", "Mattress or box spring"),
                _v("appliance", "Électroménager (sans halocarbures)", "Appliance (no refrigerant)"),
                _v(
                    "refrigerant-appliance",
                    "Réfrigérateur, congélateur ou climatiseur",
                    "Refrigerator, freezer or air conditioner",
                ),
                _v("carpet", "Tapis roulé et attaché", "Carpet, rolled and tied"),
                _v("other", "Autre", "Other"),
            ),
        ),
        _a(
            "item-count",
            "number",
            3,
            "Nombre d'objets",
            "Number of items",
            required=True,
            datatype_fr="Nombre entier",
            datatype_en="Whole number",
        ),
        _a(
            "placement",
            "text",
            4,
            "Où sont les objets (ex. : à gauche de l'entrée)?",
            "Where are the items (e.g. left of the driveway)?",
        ),
    ],
    "waste-missed-garbage": [
        _a(
            "bin-out-on-time",
            "singlevaluelist",
            1,
            "Le bac était-il au chemin avant 7 h?",
            "Was the bin at the curb before 7 a.m.?",
            required=True,
            values=_YES_NO,
        ),
    ],
    "waste-missed-recycling": [
        _a(
            "bin-out-on-time",
            "singlevaluelist",
            1,
            "Le bac était-il au chemin avant 7 h?",
            "Was the bin at the curb before 7 a.m.?",
            required=True,
            values=_YES_NO,
        ),
    ],
    "waste-missed-organics": [
        _a(
            "bin-out-on-time",
            "singlevaluelist",
            1,
            "Le bac était-il au chemin avant 7 h?",
            "Was the bin at the curb before 7 a.m.?",
            required=True,
            values=_YES_NO,
        ),
    ],
    "damaged-bin": [
        _a(
            "bin-type",
            "singlevaluelist",
            1,
            "Type de bac",
            "Bin type",
            required=True,
            values=_BIN_TYPES,
        ),
        _a(
            "damage",
            "singlevaluelist",
            2,
            "Problème",
            "Problem",
            required=True,
            values=(
                _v("lid", "Couvercle brisé", "Broken lid"),
                _v("wheel", "Roue brisée", "Broken wheel"),
                _v("cracked", "Bac fissuré", "Cracked bin"),
                _v("missing", "Bac volé ou jamais livré", "Stolen or never delivered"),
            ),
        ),
        _a(
            "serial-number",
            "string",
            3,
            "Numéro de série inscrit sur le bac",
            "Serial number printed on the bin",
        ),
    ],
    "illegal-dumping": [
        _a(
            "waste-types",
            "multivaluelist",
            1,
            "Types de déchets",
            "Kinds of waste",
            values=(
                _v("household", "Ordures ménagères", "Household garbage"),
                _v("construction", "Matériaux de construction", "Construction materials"),
                _v("tires", "Pneus", "Tires"),
                _v("hazardous", "Produits dangereux (peinture, huile)", "Hazardous (paint, oil)"),
                _v("furniture", "Meubles", "Furniture"),
            ),
        ),
    ],
    "streetlight": [
        _a(
            "problem",
            "singlevaluelist",
            1,
            "Problème observé",
            "Problem seen",
            required=True,
            values=(
                _v("out", "Éteint", "Out"),
                _v("flickering", "Clignote", "Flickering"),
                _v("day-burning", "Allumé le jour", "On during the day"),
            ),
        ),
        _a("pole-number", "string", 2, "Numéro du poteau", "Pole number"),
    ],
    "pothole": [
        _a(
            "size",
            "singlevaluelist",
            1,
            "Taille approximative",
            "Approximate size",
            values=(
                _v("small", "Moins de 30 cm", "Under 30 cm"),
                _v("medium", "30 à 60 cm", "30 to 60 cm"),
                _v("large", "Plus de 60 cm", "Over 60 cm"),
            ),
        ),
    ],
}
