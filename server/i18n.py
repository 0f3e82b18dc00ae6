"""fr-CA (default) and English catalogues, and Accept-Language negotiation.

Every user-facing message of the API is a key here with both languages; a test checks that
no key is missing a language and that every key raised in code exists. Long because it is
data: one entry per message, both languages side by side.
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
    "json_malformed": {
        "fr": "Le contenu envoyé n'est pas du JSON valide en UTF-8.",
        "en": "The request body is not valid UTF-8 JSON.",
    },
    "json_too_deep": {
        "fr": "Le JSON envoyé est imbriqué trop profondément (au plus {limit} niveaux).",
        "en": "The JSON body is nested too deeply (at most {limit} levels).",
    },
    "json_number_out_of_range": {
        "fr": "Le JSON envoyé contient un nombre hors limites.",
        "en": "The JSON body holds a number out of range.",
    },
    "text_nul_character": {
        "fr": "Le texte envoyé contient un caractère nul (U+0000), qui n'est pas accepté.",
        "en": "The text sent holds a NUL character (U+0000), which is not accepted.",
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
    "stream_ticket_invalid": {
        "fr": "Ce billet de flux est inconnu, expiré ou déjà utilisé. Demandez-en un nouveau.",
        "en": "This stream ticket is unknown, expired or already used. Ask for a new one.",
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
    "note_empty": {
        "fr": "La note est vide.",
        "en": "The note is empty.",
    },
    "note_id_taken": {
        "fr": "L'identifiant de note {id} est déjà pris par une autre note.",
        "en": "Note id {id} is already used by another note.",
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
    "date_range_invalid": {
        "fr": "La date de début doit précéder la date de fin.",
        "en": "The start date must come before the end date.",
    },
    "date_range_too_long": {
        "fr": "La période ne peut dépasser {days} jours.",
        "en": "The period cannot exceed {days} days.",
    },
    "bbox_invalid": {
        "fr": "Le paramètre bbox doit être min_lon,min_lat,max_lon,max_lat.",
        "en": "The bbox parameter must be min_lon,min_lat,max_lon,max_lat.",
    },
    # citizen Web Push (server/notify/)
    "push_subscription_invalid": {
        "fr": "Abonnement aux notifications invalide : {reason}.",
        "en": "Invalid notification subscription: {reason}.",
    },
    "push_endpoint_not_allowed": {
        "fr": "Ce service de notifications n'est pas accepté : {host}.",
        "en": "This push service is not accepted: {host}.",
    },
    "push_subscriptions_limit": {
        "fr": "Trop d'appareils sont abonnés à cette requête (maximum {limit}).",
        "en": "Too many devices are subscribed to this request (at most {limit}).",
    },
    # citizen notification texts (payloads rendered per subscriber language)
    "notify_received_title": {
        "fr": "Requête reçue",
        "en": "Request received",
    },
    "notify_received_body": {
        "fr": "Votre requête « {service} » ({address}) a été reçue. "
        "Nous vous aviserons de son suivi.",
        "en": "Your '{service}' request ({address}) was received. "
        "We will let you know how it goes.",
    },
    "notify_scheduled_title": {
        "fr": "Intervention planifiée",
        "en": "Work scheduled",
    },
    "notify_scheduled_body": {
        "fr": "Une équipe a été assignée à votre requête « {service} » ({address}).",
        "en": "A crew was assigned to your '{service}' request ({address}).",
    },
    "notify_completed_title": {
        "fr": "Requête traitée",
        "en": "Request handled",
    },
    "notify_completed_body": {
        "fr": "« {service} » ({address}) : {outcome}",
        "en": "'{service}' ({address}): {outcome}",
    },
    "notify_cancelled_title": {
        "fr": "Requête fermée",
        "en": "Request closed",
    },
    "notify_cancelled_body": {
        "fr": "Votre requête « {service} » ({address}) a été fermée sans intervention. {outcome}",
        "en": "Your '{service}' request ({address}) was closed without work. {outcome}",
    },
    "notify_reopened_title": {
        "fr": "Requête rouverte",
        "en": "Request reopened",
    },
    "notify_reopened_body": {
        "fr": "Votre requête « {service} » ({address}) a été rouverte et sera traitée de nouveau.",
        "en": "Your '{service}' request ({address}) was reopened and will be handled again.",
    },
    "notify_outcome_fixed": {
        "fr": "les travaux ont été effectués.",
        "en": "the work was done.",
    },
    "notify_outcome_no_condition_found": {
        "fr": "l'équipe n'a constaté aucun problème sur place.",
        "en": "the crew found no problem on site.",
    },
    "notify_outcome_duplicate": {
        "fr": "le problème avait déjà été signalé et a été traité avec l'autre signalement.",
        "en": "the problem had already been reported and was handled with the other report.",
    },
    "notify_outcome_not_city_responsibility": {
        "fr": "ce problème ne relève pas de la Ville.",
        "en": "this problem is not the City's responsibility.",
    },
    "notify_outcome_referred": {
        "fr": "la requête a été transmise à l'organisme responsable.",
        "en": "the request was referred to the organisation responsible.",
    },
    "notify_outcome_unable_to_access": {
        "fr": "l'équipe n'a pas pu accéder au lieu. Vous pouvez faire une nouvelle requête.",
        "en": "the crew could not reach the site. You may submit a new request.",
    },
    "notify_outcome_partially_done": {
        "fr": "les travaux ont été effectués en partie.",
        "en": "the work was partly done.",
    },
    "notify_outcome_none": {
        "fr": "l'intervention est terminée.",
        "en": "the work is finished.",
    },
    # photo evidence (server/photos/)
    "photo_unsupported_type": {
        "fr": "Type d'image non pris en charge : envoyez une photo JPEG, PNG, WebP ou HEIC.",
        "en": "Unsupported image type: send a JPEG, PNG, WebP or HEIC photo.",
    },
    "photo_empty": {
        "fr": "Le fichier envoyé est vide.",
        "en": "The uploaded file is empty.",
    },
    "photo_truncated": {
        "fr": "L'image est incomplète : l'envoi a probablement été interrompu.",
        "en": "The image is truncated: the upload was probably cut short.",
    },
    "photo_decompression_bomb": {
        "fr": "L'image déclare beaucoup trop de pixels (bombe de décompression possible).",
        "en": "The image declares far too many pixels (possible decompression bomb).",
    },
    "photo_too_many_pixels": {
        "fr": "L'image compte plus de pixels que ce service n'en accepte.",
        "en": "The image has more pixels than this service accepts.",
    },
    "photo_corrupt": {
        "fr": "L'image est endommagée et ne peut pas être lue.",
        "en": "The image is corrupt and cannot be decoded.",
    },
    "photo_too_large": {
        "fr": "La photo dépasse la taille maximale de {max_mb} Mo.",
        "en": "The photo exceeds the maximum size of {max_mb} MB.",
    },
    "photo_hash_mismatch": {
        "fr": "Le contenu reçu ne correspond pas à l'empreinte SHA-256 annoncée. "
        "Recommencez l'envoi.",
        "en": "The bytes received do not match the declared SHA-256. Start the upload again.",
    },
    "photo_integrity_failed": {
        "fr": "L'original conservé ne correspond plus à son empreinte SHA-256 (altération "
        "possible). L'incident a été journalisé.",
        "en": "The stored original no longer matches its SHA-256 (possible tampering). "
        "The incident was logged.",
    },
    "photo_purged": {
        "fr": "L'original de cette photo a été supprimé à la fin de sa durée de conservation.",
        "en": "This photo's original was deleted at the end of its retention period.",
    },
    "upload_offset_mismatch": {
        "fr": "Position d'envoi inattendue : le serveur a reçu {offset} octets. "
        "Reprenez à partir de là.",
        "en": "Unexpected upload offset: the server holds {offset} bytes. Resume from there.",
    },
    "upload_overflow": {
        "fr": "Ce morceau dépasse la longueur annoncée de la photo ({length} octets).",
        "en": "This chunk goes beyond the photo's declared length ({length} bytes).",
    },
    "upload_length_mismatch": {
        "fr": "Un envoi de cette photo est déjà en cours avec une autre longueur "
        "({length} octets).",
        "en": "An upload of this photo is already in progress with another length "
        "({length} bytes).",
    },
    # evidence flags shown to dispatchers (WorkOrderPhoto.flags)
    "photo_flag_far_from_site": {
        "fr": "Prise à {distance} m du lieu des travaux (plus de {max_distance} m).",
        "en": "Taken {distance} m from the job site (more than {max_distance} m).",
    },
    "photo_flag_no_location": {
        "fr": "Aucune position connue pour cette photo.",
        "en": "No known position for this photo.",
    },
    "photo_flag_exif_location_mismatch": {
        "fr": "La position de l'appareil et celle enregistrée dans la photo diffèrent.",
        "en": "The device's position and the one recorded in the photo differ.",
    },
    "photo_flag_taken_long_before_completion": {
        "fr": "Prise plus de {max_age} h avant la fin des travaux.",
        "en": "Taken more than {max_age} h before the work was completed.",
    },
    "photo_flag_exif_time_mismatch": {
        "fr": "La date de prise de vue de la photo diffère de plus de {max_age} h du moment "
        "où elle a été jointe (photo de la galerie ?).",
        "en": "The photo's shooting time differs by more than {max_age} h from when it was "
        "attached (a gallery photo?).",
    },
    "photo_flag_awaiting_upload": {
        "fr": "Photo annoncée, pas encore reçue.",
        "en": "Photo announced, not received yet.",
    },
    # Open311 GeoReport v2 (server/open311/)
    "open311_api_key_required": {
        "fr": "Une clé d'API (api_key) est requise pour créer une demande.",
        "en": "An api_key is required to create a request.",
    },
    "open311_api_key_invalid": {
        "fr": "Clé d'API (api_key) invalide ou révoquée.",
        "en": "Invalid or revoked api_key.",
    },
    "open311_jurisdiction_unknown": {
        "fr": "Juridiction inconnue : « {jurisdiction_id} ».",
        "en": "Unknown jurisdiction: '{jurisdiction_id}'.",
    },
    "open311_parameter_required": {
        "fr": "Le paramètre « {name} » est requis.",
        "en": "The '{name}' parameter is required.",
    },
    "open311_parameter_invalid": {
        "fr": "Le paramètre « {name} » est invalide.",
        "en": "The '{name}' parameter is invalid.",
    },
    "open311_form_required": {
        "fr": "Corps refusé : Open311 attend application/x-www-form-urlencoded ou "
        "multipart/form-data (reçu : {content_type}).",
        "en": "Body refused: Open311 expects application/x-www-form-urlencoded or "
        "multipart/form-data (received: {content_type}).",
    },
    "open311_date_invalid": {
        "fr": "« {name} » doit être une date W3C, p. ex. 2026-01-15T08:30:00-05:00.",
        "en": "'{name}' must be a W3C datetime, e.g. 2026-01-15T08:30:00-05:00.",
    },
    "open311_status_invalid": {
        "fr": "Statut inconnu : « {status} » (open ou closed).",
        "en": "Unknown status: '{status}' (open or closed).",
    },
    "open311_location_required": {
        "fr": "Un emplacement est requis : lat et long, address_string ou address_id.",
        "en": "A location is required: lat and long, address_string or address_id.",
    },
    "open311_address_not_located": {
        "fr": "Adresse impossible à localiser : envoyez aussi lat et long.",
        "en": "This address cannot be located: send lat and long as well.",
    },
    "open311_attribute_required": {
        "fr": "L'attribut « {code} » est requis.",
        "en": "The '{code}' attribute is required.",
    },
    "open311_attribute_invalid": {
        "fr": "Valeur invalide pour l'attribut « {code} ».",
        "en": "Invalid value for the '{code}' attribute.",
    },
    "open311_attribute_values_mismatch": {
        "fr": "Attribut « {code} » : seules les listes (singlevaluelist, multivaluelist) "
        "ont des valeurs, et elles en ont au moins une.",
        "en": "Attribute '{code}': only lists (singlevaluelist, multivaluelist) have values, "
        "and they need at least one.",
    },
    "open311_service_not_found": {
        "fr": "Service inconnu : « {code} ».",
        "en": "Unknown service: '{code}'.",
    },
    "open311_request_not_found": {
        "fr": "Demande n° {id} introuvable.",
        "en": "Service request {id} not found.",
    },
    "open311_token_not_found": {
        "fr": "Jeton inconnu.",
        "en": "Unknown token.",
    },
    # offline sync (server/syncapi/, docs/sync-protocol.md)
    "protocol_unsupported": {
        "fr": "Version du protocole de synchronisation non prise en charge ({protocol}). "
        "Mettez l'application à jour.",
        "en": "Unsupported sync protocol version ({protocol}). Update the app.",
    },
    "mutation_order_invalid": {
        "fr": "Les modifications d'un envoi doivent avoir des numéros consécutifs et croissants.",
        "en": "The changes in a batch must have consecutive, ascending ids.",
    },
    "mutation_gap": {
        "fr": "Des modifications manquent : renvoyez à partir du n° {last_mutation_id} + 1.",
        "en": "Changes are missing: resend from #{last_mutation_id} + 1.",
    },
    "device_required": {
        "fr": "Seul un appareil d'équipe inscrit peut synchroniser.",
        "en": "Only an enrolled crew device can sync.",
    },
    "client_id_taken": {
        "fr": "Cet identifiant d'application appartient à un autre utilisateur.",
        "en": "This app id belongs to another user.",
    },
    "event_stream_required": {
        "fr": "Ce flux exige l'en-tête Accept: text/event-stream.",
        "en": "This stream requires Accept: text/event-stream.",
    },
    "conflict_already_resolved": {
        "fr": "Le conflit n° {id} est déjà résolu.",
        "en": "Conflict #{id} is already resolved.",
    },
    "resolution_not_allowed": {
        "fr": "La résolution « {resolution} » ne s'applique pas à un conflit « {kind} ».",
        "en": "Resolution '{resolution}' does not apply to a '{kind}' conflict.",
    },
    "suggestion_value_invalid": {
        "fr": "La valeur proposée pour « {field} » est invalide.",
        "en": "The proposed value for '{field}' is invalid.",
    },
    "work_order_unknown": {
        "fr": "Bon de travail inconnu.",
        "en": "Unknown work order.",
    },
    "args_invalid": {
        "fr": "Modification refusée : données invalides.",
        "en": "Change refused: invalid data.",
    },
    "mutation_unknown": {
        "fr": "Type de modification inconnu.",
        "en": "Unknown kind of change.",
    },
    "mutation_version_unsupported": {
        "fr": "Version de modification non prise en charge : mettez l'application à jour.",
        "en": "Unsupported change version: update the app.",
    },
    "status_not_settable": {
        "fr": "Ce statut ne peut pas être choisi depuis le terrain.",
        "en": "This status cannot be set from the field.",
    },
    "uuid_reused": {
        "fr": "Cet identifiant a déjà servi pour un autre contenu.",
        "en": "This id was already used for other content.",
    },
    "material_entry_unknown": {
        "fr": "Entrée de matériel introuvable.",
        "en": "Material entry not found.",
    },
    "material_already_voided": {
        "fr": "Cette entrée de matériel est déjà annulée.",
        "en": "This material entry is already voided.",
    },
    "status_superseded": {
        "fr": "Un autre changement de statut a eu priorité.",
        "en": "Another status change took precedence.",
    },
    "completion_not_applied": {
        "fr": "Travail enregistré, mais le bon était annulé ou désassigné : "
        "la répartition décidera.",
        "en": "Work recorded, but the order was cancelled or unassigned: dispatch will decide.",
    },
    "completion_duplicate": {
        "fr": "Le bon était déjà terminé ; vos données sont conservées.",
        "en": "The order was already completed; your data is kept.",
    },
    "suggestion": {
        "fr": "Proposition transmise à la répartition.",
        "en": "Suggestion sent to dispatch.",
    },
    "reassigned_away": {
        "fr": "Le bon a été réassigné ; votre modification est conservée et signalée.",
        "en": "The order was reassigned; your change is kept and flagged.",
    },
}

ENTITY_NAMES: dict[str, dict[str, str]] = {
    "sync_conflict": {"fr": "Conflit de synchronisation", "en": "Sync conflict"},
    "work_order": {"fr": "Bon de travail", "en": "Work order"},
    "service_request": {"fr": "Requête", "en": "Service request"},
    "crew": {"fr": "Équipe", "en": "Crew"},
    "user": {"fr": "Utilisateur", "en": "User"},
    "device": {"fr": "Appareil", "en": "Device"},
    "service_type": {"fr": "Type de service", "en": "Service type"},
    "open311_api_key": {"fr": "Clé d'API Open311", "en": "Open311 API key"},
    "photo": {"fr": "Photo d'intervention", "en": "Evidence photo"},
    "photo_upload": {"fr": "Envoi de photo", "en": "Photo upload"},
    "notice": {"fr": "Avis au répartiteur", "en": "Dispatcher notice"},
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
