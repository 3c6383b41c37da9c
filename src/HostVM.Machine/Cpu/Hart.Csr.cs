namespace HostVM.Machine.Cpu;

/// <summary>The CSR file: Zicsr instructions, access rules and every register's WARL behaviour.</summary>
public sealed unsafe partial class Hart
{
    /// <summary>mip as software reads it: the stored bits plus the PLIC's S-external line.</summary>
    private ulong EffectiveMip => Volatile.Read(ref _s->Mip) | Volatile.Read(ref _s->SeipLine);

    /// <summary>Runs a CSR instruction. False when it trapped (the trap is already entered).</summary>
    private bool ExecuteCsr(ref DecodedInsn ins, ulong pc)
    {
        int csr = (int)(ins.Imm & 0xFFF);
        ulong bits = (ulong)(ins.Imm >> 32) & 0xFFFF_FFFF;
        bool immediate = ins.Op >= Op.Csrrwi;
        ulong operand = immediate ? ins.Rs1 : _s->X[ins.Rs1];
        bool isWrite = ins.Op is Op.Csrrw or Op.Csrrwi || ins.Rs1 != 0;

        if (((csr >> 8) & 3) > (int)_s->Priv || (isWrite && (csr >> 10) == 3))
        {
            Illegal(pc, bits);
            return false;
        }

        if (!TryReadCsr(csr, out ulong old))
        {
            Illegal(pc, bits);
            return false;
        }

        if (isWrite && csr is Csr.Mip or Csr.Sip)
        {
            // mip.SEIP reads as software bit OR the PLIC line, but set/clear must act on the
            // software bits alone, atomically: other threads drive MSIP/MTIP/SEIP meanwhile.
            ulong writable = csr == Csr.Mip ? Csr.MipWritable : Csr.Ssi & _s->Mideleg;
            switch (ins.Op)
            {
                case Op.Csrrw or Op.Csrrwi: UpdateMip(writable, operand); break;
                case Op.Csrrs or Op.Csrrsi: Interlocked.Or(ref _s->Mip, operand & writable); Kick(); break;
                default: Interlocked.And(ref _s->Mip, ~(operand & writable)); Kick(); break;
            }

            _s->X[ins.Rd] = old;
            return true;
        }

        if (isWrite)
        {
            ulong value = ins.Op switch
            {
                Op.Csrrw or Op.Csrrwi => operand,
                Op.Csrrs or Op.Csrrsi => old | operand,
                _ => old & ~operand,
            };
            if (!TryWriteCsr(csr, value))
            {
                Illegal(pc, bits);
                return false;
            }
        }

        _s->X[ins.Rd] = old;
        return true;
    }

    private bool CounterEnabled(int index)
    {
        if (_s->Priv == PrivilegeMode.Machine)
        {
            return true;
        }

        bool enabled = ((_s->Mcounteren >> index) & 1) != 0;
        if (_s->Priv == PrivilegeMode.User)
        {
            enabled &= ((_s->Scounteren >> index) & 1) != 0;
        }

        return enabled;
    }

    private bool FpEnabled => (_s->Mstatus & Csr.StatusFs) != 0;

    private ulong StatusWithSd(ulong mstatus) =>
        (mstatus & Csr.StatusFs) == Csr.StatusFsDirty ? mstatus | Csr.StatusSd : mstatus & ~Csr.StatusSd;

    /// <summary>Reads a CSR as the current privilege would; false when it does not exist or is not accessible.</summary>
    public bool TryReadCsr(int csr, out ulong value)
    {
        value = 0;
        switch (csr)
        {
            case Csr.Fflags: value = _s->Fcsr & 0x1F; return FpEnabled;
            case Csr.Frm: value = (_s->Fcsr >> 5) & 7; return FpEnabled;
            case Csr.Fcsr: value = _s->Fcsr & 0xFF; return FpEnabled;
            case Csr.Cycle: value = _s->Instret + _s->CycleOffset; return CounterEnabled(0);
            case Csr.Time: value = _clock.Now; return CounterEnabled(1);
            case Csr.Instret: value = _s->Instret; return CounterEnabled(2);
            case >= Csr.HpmCounter3 and <= Csr.HpmCounter31: return CounterEnabled(csr - Csr.Cycle);

            case Csr.Sstatus: value = StatusWithSd(_s->Mstatus) & Csr.SstatusMask; return true;
            case Csr.Sie: value = _s->Mie & _s->Mideleg; return true;
            case Csr.Stvec: value = _s->Stvec; return true;
            case Csr.Scounteren: value = _s->Scounteren; return true;
            case Csr.Senvcfg: value = _s->Senvcfg; return true;
            case Csr.Sscratch: value = _s->Sscratch; return true;
            case Csr.Sepc: value = _s->Sepc; return true;
            case Csr.Scause: value = _s->Scause; return true;
            case Csr.Stval: value = _s->Stval; return true;
            case Csr.Sip: value = EffectiveMip & _s->Mideleg; return true;
            case Csr.Satp:
                value = _s->Satp;
                return !(_s->Priv == PrivilegeMode.Supervisor && (_s->Mstatus & Csr.StatusTvm) != 0);

            case Csr.Mvendorid or Csr.Marchid or Csr.Mimpid or Csr.Mconfigptr: return true;
            case Csr.Mhartid: value = (ulong)HartId; return true;
            case Csr.Mstatus: value = StatusWithSd(_s->Mstatus); return true;
            case Csr.Misa: value = Csr.MisaValue; return true;
            case Csr.Medeleg: value = _s->Medeleg; return true;
            case Csr.Mideleg: value = _s->Mideleg; return true;
            case Csr.Mie: value = _s->Mie; return true;
            case Csr.Mtvec: value = _s->Mtvec; return true;
            case Csr.Mcounteren: value = _s->Mcounteren; return true;
            case Csr.Menvcfg: value = _s->Menvcfg; return true;
            case Csr.Mcountinhibit: return true;
            case >= Csr.MhpmEvent3 and <= Csr.MhpmEvent31: return true;
            case Csr.Mscratch: value = _s->Mscratch; return true;
            case Csr.Mepc: value = _s->Mepc; return true;
            case Csr.Mcause: value = _s->Mcause; return true;
            case Csr.Mtval: value = _s->Mtval; return true;
            case Csr.Mip: value = EffectiveMip; return true;
            case >= Csr.PmpCfg0 and <= Csr.PmpCfg15:
                if ((csr & 1) != 0)
                {
                    return false; // odd pmpcfg registers do not exist on RV64
                }

                if (csr <= Csr.PmpCfg0 + 2)
                {
                    int first = (csr - Csr.PmpCfg0) * 4;
                    for (int i = 0; i < 8; i++)
                    {
                        value |= (ulong)_s->PmpCfg[first + i] << (8 * i);
                    }
                }

                return true;
            case >= Csr.PmpAddr0 and <= Csr.PmpAddr63:
                int index = csr - Csr.PmpAddr0;
                value = index < 16 ? PmpAddrRead(index) : 0;
                return true;
            case Csr.Tselect or Csr.Tdata1 or Csr.Tdata2 or Csr.Tdata3: return true;
            case Csr.Tinfo: value = 1; return true; // only type 0: there are no triggers
            case Csr.Mcycle: value = _s->Instret + _s->CycleOffset; return true;
            case Csr.Minstret: value = _s->Instret; return true;
            case >= Csr.MhpmCounter3 and <= Csr.MhpmCounter31: return true;
            default: return false;
        }
    }

    private ulong PmpAddrRead(int index)
    {
        // With a 4-byte grain every bit is stored; NAPOT/TOR read back exactly what was written.
        return _s->PmpAddr[index];
    }

    /// <summary>Writes a CSR (access rules already checked); false when the write is illegal.</summary>
    public bool TryWriteCsr(int csr, ulong value)
    {
        switch (csr)
        {
            case Csr.Fflags: _s->Fcsr = (_s->Fcsr & ~0x1FUL) | (value & 0x1F); MarkFpDirty(); return true;
            case Csr.Frm: _s->Fcsr = (_s->Fcsr & 0x1F) | ((value & 7) << 5); MarkFpDirty(); return true;
            case Csr.Fcsr: _s->Fcsr = value & 0xFF; MarkFpDirty(); return true;

            case Csr.Sstatus:
            {
                const ulong writable = Csr.StatusSie | Csr.StatusSpie | Csr.StatusSpp | Csr.StatusFs | Csr.StatusSum | Csr.StatusMxr;
                WriteStatus((_s->Mstatus & ~writable) | (value & writable));
                return true;
            }

            case Csr.Sie:
            {
                ulong mask = _s->Mideleg & Csr.SupervisorInterrupts;
                _s->Mie = (_s->Mie & ~mask) | (value & mask);
                Kick();
                return true;
            }

            case Csr.Sip:
                UpdateMip(Csr.Ssi & _s->Mideleg, value);
                return true;
            case Csr.Stvec: _s->Stvec = value & ~2UL; return true;
            case Csr.Scounteren: _s->Scounteren = value & 0xFFFF_FFFF; return true;
            case Csr.Senvcfg: _s->Senvcfg = value & 1; return true;
            case Csr.Sscratch: _s->Sscratch = value; return true;
            case Csr.Sepc: _s->Sepc = value & ~1UL; return true;
            case Csr.Scause: _s->Scause = value; return true;
            case Csr.Stval: _s->Stval = value; return true;
            case Csr.Satp:
            {
                if (_s->Priv == PrivilegeMode.Supervisor && (_s->Mstatus & Csr.StatusTvm) != 0)
                {
                    return false;
                }

                int mode = (int)(value >> 60);
                if (mode == 0 || (mode >= 8 && mode <= MaxSatpMode))
                {
                    // ASIDs are not implemented (ASIDLEN = 0): the field reads as zero. A new
                    // root table alone flushes nothing (software fences, as the spec allows), but
                    // a change of MODE (Bare <-> paged) takes effect at once: Linux turns paging
                    // on with a fence before the satp write and none after.
                    ulong next = mode == 0 ? 0 : value & ~(0xFFFFUL << 44);
                    bool modeChanged = (next >> 60) != (_s->Satp >> 60);
                    _s->Satp = next;
                    if (modeChanged)
                    {
                        FlushTlb();
                    }
                    else
                    {
                        ForgetDecodedFetches();
                    }
                }

                return true;
            }

            case Csr.Mstatus:
            {
                ulong next = (_s->Mstatus & ~Csr.MstatusWritable) | (value & Csr.MstatusWritable);
                if (((next >> Csr.StatusMppShift) & 3) == 2)
                {
                    next = (next & ~Csr.StatusMpp) | (_s->Mstatus & Csr.StatusMpp); // MPP = 2 is reserved: keep
                }

                WriteStatus(next);
                return true;
            }

            case Csr.Misa: return true;
            case Csr.Medeleg: _s->Medeleg = value & Csr.MedelegWritable; return true;
            case Csr.Mideleg: _s->Mideleg = value & Csr.SupervisorInterrupts; Kick(); return true;
            case Csr.Mie: _s->Mie = value & Csr.AllInterrupts; Kick(); return true;
            case Csr.Mtvec: _s->Mtvec = value & ~2UL; return true;
            case Csr.Mcounteren: _s->Mcounteren = value & 0xFFFF_FFFF; return true;
            case Csr.Menvcfg: _s->Menvcfg = value & 1; return true;
            case Csr.Mcountinhibit: return true; // WARL, hardwired to zero: the counters always count
            case >= Csr.MhpmEvent3 and <= Csr.MhpmEvent31: return true;
            case Csr.Mscratch: _s->Mscratch = value; return true;
            case Csr.Mepc: _s->Mepc = value & ~1UL; return true;
            case Csr.Mcause: _s->Mcause = value; return true;
            case Csr.Mtval: _s->Mtval = value; return true;
            case Csr.Mip: UpdateMip(Csr.MipWritable, value); return true;
            case >= Csr.PmpCfg0 and <= Csr.PmpCfg15:
                if ((csr & 1) != 0)
                {
                    return false;
                }

                if (csr <= Csr.PmpCfg0 + 2)
                {
                    int first = (csr - Csr.PmpCfg0) * 4;
                    for (int i = 0; i < 8; i++)
                    {
                        if ((_s->PmpCfg[first + i] & 0x80) != 0)
                        {
                            continue; // locked
                        }

                        byte cfg = (byte)((value >> (8 * i)) & 0x9F);
                        if ((cfg & 3) == 2)
                        {
                            cfg &= 0xFC; // W without R is reserved
                        }

                        _s->PmpCfg[first + i] = cfg;
                    }

                    UpdatePmpActive();
                }

                return true;
            case >= Csr.PmpAddr0 and <= Csr.PmpAddr63:
            {
                int index = csr - Csr.PmpAddr0;
                if (index >= 16)
                {
                    return true;
                }

                bool locked = (_s->PmpCfg[index] & 0x80) != 0
                    || (index < 15 && (_s->PmpCfg[index + 1] & 0x80) != 0 && ((_s->PmpCfg[index + 1] >> 3) & 3) == 1);
                if (!locked)
                {
                    _s->PmpAddr[index] = value & ((1UL << 54) - 1);
                    UpdatePmpActive();
                }

                return true;
            }

            case Csr.Tselect or Csr.Tdata1 or Csr.Tdata2 or Csr.Tdata3 or Csr.Tinfo: return true;
            case Csr.Mcycle: _s->CycleOffset = value - _s->Instret; return true;
            case Csr.Minstret: _s->Instret = value - 1; return true; // the CSR instruction itself retires after
            case >= Csr.MhpmCounter3 and <= Csr.MhpmCounter31: return true;
            default: return false;
        }
    }

    private void WriteStatus(ulong next)
    {
        ulong old = _s->Mstatus;
        _s->Mstatus = next;
        if (((old ^ next) & Csr.StatusMxr) != 0)
        {
            FlushTlb();
        }

        UpdateTranslationContext();
        Kick();
    }

    private void UpdateMip(ulong mask, ulong value)
    {
        ulong current, next;
        do
        {
            current = Volatile.Read(ref _s->Mip);
            next = (current & ~mask) | (value & mask);
        }
        while (Interlocked.CompareExchange(ref _s->Mip, next, current) != current);
        Kick();
    }

    private void MarkFpDirty() => _s->Mstatus |= Csr.StatusFsDirty;
}
