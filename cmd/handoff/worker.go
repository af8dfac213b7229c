package main

import (
	"errors"

	"github.com/handoff-telehealth/handoff/config"
	"github.com/handoff-telehealth/handoff/worker"
)

func registerWorkflowCache(fs *config.FlagSet) *int {
	return fs.Int("workflow-cache", worker.DefaultWorkflowCache, "visits the worker keeps in memory between their tasks (in dev, the embedded Temporal server too); others are rebuilt from their history when next needed")
}

func checkWorkflowCache(n int) error {
	if n < 1 {
		return errors.New("--workflow-cache must be at least 1")
	}
	return nil
}
