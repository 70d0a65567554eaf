package main

import "errors"

func benchPlan(b *Bench) error { return errors.New("plan: not written yet") }
