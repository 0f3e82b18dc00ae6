"""A citizen's private view of their request (tracking token): the request, its work order's
status and outcome, and the public copy of the completion photo. It reads three domains
(requests, work orders, photos), so it sits above them."""
