"""fr-CA (default) and English catalogues, and Accept-Language negotiation.

Every user-facing message of the API is a key here with both languages; a test checks that
no key is missing a language and that every key raised in code exists.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

MESSAGES: dict[str, dict[str, str]] = {
    # generic HTTP problems
    "bad_request": {
        "fr": "La requête est invalide.",
        "en": "The request is invalid.",
    },
    "validation_failed": {
        "fr": "Certaines données sont invalides : {fields}.",
        "en": "Some data is invalid: {fields}.",
    },
    "not_authenticated": {
        "fr": "Authentification requise. Connectez-vous, puis réessayez.",
        "en": "Authentication required. Sign in, then try again.",
    },
    "invalid_credentials": {
        "fr": "Nom d'utilisateur ou mot de passe incorrect.",
        "en": "Wrong username or password.",
    },
    "token_revoked": {
        "fr": "Cet appareil a été révoqué. Demandez à la répartition de le réactiver "
        "ou connectez-vous de nouveau.",
        "en": "This device was revoked. Ask dispatch, or sign in again.",
    },
    "token_expired": {
        "fr": "Votre session a expiré. Connectez-vous de nouveau.",
        "en": "Your session expired. Sign in again.",
    },
    "forbidden": {
        "fr": "Vous n'avez pas accès à cette ressource.",
        "en": "You do not have access to this resource.",
    },
    "not_found": {
        "fr": "Ressource introuvable.",
        "en": "Resource not found.",
    },
    "method_not_allowed": {
        "fr": "Méthode non permise pour cette adresse.",
        "en": "Method not allowed for this address.",
    },
    "body_too_large": {
        "fr": "Le contenu envoyé est trop volumineux.",
        "en": "The request body is too large.",
    },
    "too_many_requests": {
        "fr": "Trop de requêtes. Réessayez dans un moment.",
        "en": "Too many requests. Try again shortly.",
    },
    "internal_error": {
        "fr": "Erreur interne. L'incident a été journalisé.",
        "en": "Internal error. The incident was logged.",
    },
    "database_busy": {
        "fr": "La base de données est occupée. Réessayez.",
        "en": "The database is busy. Try again.",
    },
    "integrity_error": {
        "fr": "La modification entre en conflit avec des données existantes.",
        "en": "The change conflicts with existing data.",
    },
    # domain
    "entity_not_found": {
        "fr": "{entity} n° {id} introuvable.",
        "en": "{entity} #{id} not found.",
    },
    "service_type_unknown": {
        "fr": "Type de service inconnu : « {code} ».",
        "en": "Unknown service type: '{code}'.",
    },
    "borough_unknown": {
        "fr": "Arrondissement inconnu : « {code} ».",
        "en": "Unknown borough: '{code}'.",
    },
    "duplicate_code": {
        "fr": "Le code « {code} » existe déjà.",
        "en": "Code '{code}' already exists.",
    },
    "duplicate_username": {
        "fr": "Le nom d'utilisateur « {username} » existe déjà.",
        "en": "Username '{username}' already exists.",
    },
    "outside_jurisdiction": {
        "fr": "Cet emplacement est hors du territoire desservi.",
        "en": "This location is outside the area served.",
    },
    "version_conflict": {
        "fr": "Le bon de travail a été modifié entre-temps (version {current}, "
        "vous aviez la version {expected}). Rechargez-le, puis réessayez.",
        "en": "The work order changed meanwhile (version {current}, you had version "
        "{expected}). Reload it, then try again.",
    },
    "illegal_transition": {
        "fr": "Impossible de passer de « {current} » par l'action « {action} ».",
        "en": "Action '{action}' is not possible from status '{current}'.",
    },
    "role_not_allowed": {
        "fr": "Votre rôle ne permet pas l'action « {action} ».",
        "en": "Your role may not perform '{action}'.",
    },
    "outcome_required": {
        "fr": "Indiquez le résultat de l'intervention pour terminer le bon.",
        "en": "Give the outcome of the work to complete the order.",
    },
    "outcome_not_allowed": {
        "fr": "Un résultat n'est accepté qu'à la fin de l'intervention.",
        "en": "An outcome is accepted only when completing.",
    },
    "outcome_unknown": {
        "fr": "Résultat inconnu : « {outcome} ».",
        "en": "Unknown outcome: '{outcome}'.",
    },
    "action_unknown": {
        "fr": "Action inconnue : « {action} ».",
        "en": "Unknown action: '{action}'.",
    },
    "crew_required": {
        "fr": "Le bon de travail doit d'abord être assigné à une équipe.",
        "en": "The work order must first be assigned to a crew.",
    },
    "reason_required": {
        "fr": "Une raison est requise.",
        "en": "A reason is required.",
    },
    "crew_inactive": {
        "fr": "L'équipe n° {id} est inactive.",
        "en": "Crew #{id} is inactive.",
    },
    "not_your_crew": {
        "fr": "Ce bon de travail n'est pas assigné à votre équipe.",
        "en": "This work order is not assigned to your crew.",
    },
    "request_already_linked": {
        "fr": "La requête n° {id} est déjà rattachée au bon de travail n° {work_order_id}.",
        "en": "Request #{id} is already linked to work order #{work_order_id}.",
    },
    "request_type_mismatch": {
        "fr": "Les requêtes à regrouper doivent être du même type de service.",
        "en": "Requests merged together must be of the same service type.",
    },
    "location_required": {
        "fr": "Un emplacement (latitude et longitude) ou au moins une requête est requis.",
        "en": "A location (latitude and longitude) or at least one request is required.",
    },
    "work_order_closed": {
        "fr": "Le bon de travail n° {id} est fermé.",
        "en": "Work order #{id} is closed.",
    },
    "device_not_crew": {
        "fr": "Seul un membre d'équipe peut inscrire un appareil.",
        "en": "Only a crew member can enrol a device.",
    },
    "user_without_crew": {
        "fr": "Un membre d'équipe doit appartenir à une équipe.",
        "en": "A crew member must belong to a crew.",
    },
    "bbox_invalid": {
        "fr": "Le paramètre bbox doit être min_lon,min_lat,max_lon,max_lat.",
        "en": "The bbox parameter must be min_lon,min_lat,max_lon,max_lat.",
    },
}

ENTITY_NAMES: dict[str, dict[str, str]] = {
    "work_order": {"fr": "Bon de travail", "en": "Work order"},
    "service_request": {"fr": "Requête", "en": "Service request"},
    "crew": {"fr": "Équipe", "en": "Crew"},
    "user": {"fr": "Utilisateur", "en": "User"},
    "device": {"fr": "Appareil", "en": "Device"},
    "service_type": {"fr": "Type de service", "en": "Service type"},
}


def negotiate(accept_language: str | None) -> str:
    """Pick fr or en from an Accept-Language header (q-values honoured), fr by default."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(accept_language.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.split("-")[0]
        if primary in LANGUAGES and quality > 0:
            candidate = (quality, -index, primary)
            if best is None or candidate > best:
                best = candidate
    return best[2] if best else DEFAULT_LANGUAGE


def translate(key: str, language: str, **params: Any) -> str:
    entry = MESSAGES.get(key) or MESSAGES["bad_request"]
    template = entry.get(language) or entry[DEFAULT_LANGUAGE]
    if "entity" in params and params["entity"] in ENTITY_NAMES:
        params = {**params, "entity": ENTITY_NAMES[params["entity"]][language]}
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
