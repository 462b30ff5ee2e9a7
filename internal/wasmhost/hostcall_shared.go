package wasmhost

// proxy_get_shared_data(key_ptr, key_len, ret_ptr_ptr, ret_size_ptr, ret_cas_ptr)
func hcGetSharedData(in *Instance, s []uint64) Status {
	key, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	sh := in.plugin.svc.Shared
	if sh == nil {
		return StatusNotFound
	}
	v, cas, found := sh.Get(key)
	if !found {
		return StatusNotFound
	}
	if st := in.returnBytes(v, u32(s[2]), u32(s[3])); st != StatusOK {
		return st
	}
	if u32(s[4]) != 0 && !in.writeU32(u32(s[4]), cas) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// proxy_set_shared_data(key_ptr, key_len, val_ptr, val_len, cas)
func hcSetSharedData(in *Instance, s []uint64) Status {
	key, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	val, ok := in.read(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	sh := in.plugin.svc.Shared
	if sh == nil {
		return StatusInternalFailure
	}
	return sh.Set(key, val, u32(s[4]))
}

// proxy_register_shared_queue(name_ptr, name_len, ret_id_ptr)
func hcRegisterQueue(in *Instance, s []uint64) Status {
	name, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	sh := in.plugin.svc.Shared
	if sh == nil {
		return StatusInternalFailure
	}
	id := sh.register("", name, in, in.rootOf())
	if !in.writeU32(u32(s[2]), id) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// proxy_resolve_shared_queue(vmid_ptr, vmid_len, name_ptr, name_len, ret_id_ptr)
func hcResolveQueue(in *Instance, s []uint64) Status {
	vmID, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	name, ok := in.readString(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	sh := in.plugin.svc.Shared
	if sh == nil {
		return StatusNotFound
	}
	id, found := sh.resolve(vmID, name)
	if !found {
		return StatusNotFound
	}
	if !in.writeU32(u32(s[4]), id) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// proxy_enqueue_shared_queue(id, ptr, len)
func hcEnqueue(in *Instance, s []uint64) Status {
	v, ok := in.read(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	sh := in.plugin.svc.Shared
	if sh == nil {
		return StatusNotFound
	}
	owner, root, st := sh.enqueue(u32(s[0]), v)
	if st == StatusOK && owner != nil {
		id := u32(s[0])
		go owner.queueReady(root, id)
	}
	return st
}

// queueReady tells the registering root context an item is waiting.
func (in *Instance) queueReady(root, id uint32) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.dead.Load() || in.closed.Load() {
		return
	}
	if gc := in.contexts[root]; gc == nil || gc.rs == nil || gc.rs.deleted {
		return
	}
	_, _ = in.call(in.fnQueueReady, root, uint64(root), uint64(id))
}

// proxy_dequeue_shared_queue(id, ret_ptr_ptr, ret_size_ptr)
func hcDequeue(in *Instance, s []uint64) Status {
	sh := in.plugin.svc.Shared
	if sh == nil {
		return StatusNotFound
	}
	v, st := sh.dequeue(u32(s[0]))
	if st != StatusOK {
		return st
	}
	return in.returnBytes(v, u32(s[1]), u32(s[2]))
}

// proxy_define_metric(type, name_ptr, name_len, ret_id_ptr)
func hcDefineMetric(in *Instance, s []uint64) Status {
	kind := int(u32(s[0]))
	if kind > metricHistogram {
		return StatusBadArgument
	}
	name, ok := in.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	m := in.plugin.metrics
	if m == nil {
		m = discardMetrics
	}
	pm := m.define(in.plugin.spec.Name, name, kind)
	for id, existing := range in.metricIDs {
		if existing == pm {
			if !in.writeU32(u32(s[3]), id) {
				return StatusInvalidMemoryAccess
			}
			return StatusOK
		}
	}
	in.nextMetic++
	id := in.nextMetic*4 + uint32(kind)
	in.metricIDs[id] = pm
	if !in.writeU32(u32(s[3]), id) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

var discardMetrics = NewMetrics(nil, nil)

// proxy_increment_metric(id, delta i64)
func hcIncrementMetric(in *Instance, s []uint64) Status {
	pm := in.metricIDs[u32(s[0])]
	if pm == nil {
		return StatusNotFound
	}
	delta := int64(s[1])
	switch pm.key.kind {
	case metricCounter:
		if delta < 0 {
			return StatusBadArgument
		}
		fallthrough
	case metricGauge:
		for {
			old := pm.val.Load()
			if pm.val.CompareAndSwap(old, satAdd(old, delta)) {
				break
			}
		}
		return StatusOK
	}
	return StatusBadArgument
}

// proxy_record_metric(id, value i64)
func hcRecordMetric(in *Instance, s []uint64) Status {
	pm := in.metricIDs[u32(s[0])]
	if pm == nil {
		return StatusNotFound
	}
	switch pm.key.kind {
	case metricGauge, metricCounter:
		pm.val.Store(int64(s[1]))
	case metricHistogram:
		pm.hist.Observe(float64(s[1]))
	}
	return StatusOK
}

// proxy_get_metric(id, ret_u64_ptr)
func hcGetMetric(in *Instance, s []uint64) Status {
	pm := in.metricIDs[u32(s[0])]
	if pm == nil {
		return StatusNotFound
	}
	if pm.key.kind == metricHistogram {
		return StatusBadArgument
	}
	if !in.writeU64(u32(s[1]), uint64(pm.val.Load())) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}
