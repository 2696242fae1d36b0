package ui

func (h *Handler) logs(rq *request) error           { return notFound() }
func (h *Handler) exportCreate(rq *request) error   { return notFound() }
func (h *Handler) exportDownload(rq *request) error { return notFound() }
func (h *Handler) holdCreate(rq *request) error     { return notFound() }
func (h *Handler) holdRelease(rq *request) error    { return notFound() }
