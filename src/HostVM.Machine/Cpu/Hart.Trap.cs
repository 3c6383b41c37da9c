namespace HostVM.Machine.Cpu;

/// <summary>Trap entry, xRET, and the system instructions that change privilege or translation.</summary>
public sealed unsafe partial class Hart
{
    /// <summary>Takes a trap at <paramref name="pc"/>: delegation, status stacking, vectoring.</summary>
    public void EnterTrap(ulong cause, ulong tval, ulong pc)
    {
        bool interrupt = (cause & Csr.InterruptBit) != 0;
        int code = (int)(cause & 63);
        LastTrapCause = cause;
        LastTrapValue = tval;
        _s->ReservationAddress = ulong.MaxValue;
        ulong mstatus = _s->Mstatus;
        bool toSupervisor = _s->Priv <= PrivilegeMode.Supervisor
            && (((interrupt ? _s->Mideleg : _s->Medeleg) >> code) & 1) != 0;

        if (toSupervisor)
        {
            _s->Scause = cause;
            _s->Sepc = pc;
            _s->Stval = tval;
            mstatus = (mstatus & ~(Csr.StatusSpie | Csr.StatusSie | Csr.StatusSpp))
                | ((mstatus & Csr.StatusSie) != 0 ? Csr.StatusSpie : 0)
                | (_s->Priv == PrivilegeMode.Supervisor ? Csr.StatusSpp : 0);
            _s->Priv = PrivilegeMode.Supervisor;
            ulong tvec = _s->Stvec;
            _s->Pc = (tvec & ~3UL) + ((tvec & 1) != 0 && interrupt ? 4UL * (ulong)code : 0);
        }
        else
        {
            if (EcallHandler is not null && _s->Mtvec == 0)
            {
                // Only the built-in SBI is present and it delegates everything it can: a trap into
                // M-mode means the guest is beyond help. Report instead of jumping to address 0.
                FatalError?.Invoke(this, $"unhandled trap to M-mode: cause {DescribeCause(cause)}, tval 0x{tval:x}, pc 0x{pc:x}");
                _stopRequested = true;
            }

            _s->Mcause = cause;
            _s->Mepc = pc;
            _s->Mtval = tval;
            mstatus = (mstatus & ~(Csr.StatusMpie | Csr.StatusMie | Csr.StatusMpp))
                | ((mstatus & Csr.StatusMie) != 0 ? Csr.StatusMpie : 0)
                | ((ulong)_s->Priv << Csr.StatusMppShift);
            _s->Priv = PrivilegeMode.Machine;
            ulong tvec = _s->Mtvec;
            _s->Pc = (tvec & ~3UL) + ((tvec & 1) != 0 && interrupt ? 4UL * (ulong)code : 0);
        }

        _s->Mstatus = mstatus;
        UpdateTranslationContext();
    }

    public static string DescribeCause(ulong cause)
    {
        if ((cause & Csr.InterruptBit) != 0)
        {
            return (cause & 63) switch
            {
                1 => "supervisor software interrupt",
                3 => "machine software interrupt",
                5 => "supervisor timer interrupt",
                7 => "machine timer interrupt",
                9 => "supervisor external interrupt",
                11 => "machine external interrupt",
                var c => $"interrupt {c}",
            };
        }

        return Enum.IsDefined((TrapCause)cause) ? $"{cause} ({(TrapCause)cause})" : cause.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private void Illegal(ulong pc, ulong bits) => EnterTrap((ulong)TrapCause.IllegalInstruction, bits, pc);

    /// <summary>An illegal-instruction trap whose mtval is the instruction's bits, read again from memory.</summary>
    private void IllegalAt(ulong pc) => Illegal(pc, InstructionBitsAt(pc));

    private ulong InstructionBitsAt(ulong pc)
    {
        if (!Translate(pc, AccessKind.Fetch, _s->Priv, out ulong pa) || !_bus.TryRead(pa, 2, out ulong low))
        {
            return 0;
        }

        if ((low & 3) != 3)
        {
            return low;
        }

        return Translate(pc + 2, AccessKind.Fetch, _s->Priv, out ulong pa2) && _bus.TryRead(pa2, 2, out ulong high)
            ? low | (high << 16)
            : 0;
    }

    private void ExecuteSystem(ref DecodedInsn ins, ulong pc)
    {
        ulong next = pc + ins.Length;
        switch (ins.Op)
        {
            case Op.Ecall:
                if (_s->Priv == PrivilegeMode.Supervisor && EcallHandler is not null && EcallHandler.HandleEcall(this))
                {
                    _s->Pc = next;
                    _s->Instret++;
                    return;
                }

                EnterTrap((ulong)TrapCause.EcallFromU + (ulong)_s->Priv, 0, pc);
                return;

            case Op.Ebreak:
                EnterTrap((ulong)TrapCause.Breakpoint, pc, pc);
                return;

            case Op.Mret:
            {
                if (_s->Priv != PrivilegeMode.Machine)
                {
                    IllegalAt(pc);
                    return;
                }

                ulong mstatus = _s->Mstatus;
                var target = (PrivilegeMode)((mstatus >> Csr.StatusMppShift) & 3);
                mstatus = (mstatus & ~(Csr.StatusMie | Csr.StatusMpp))
                    | ((mstatus & Csr.StatusMpie) != 0 ? Csr.StatusMie : 0)
                    | Csr.StatusMpie;
                if (target != PrivilegeMode.Machine)
                {
                    mstatus &= ~Csr.StatusMprv;
                }

                _s->Mstatus = mstatus;
                _s->Priv = target;
                _s->Pc = _s->Mepc;
                _s->Instret++;
                UpdateTranslationContext();
                Kick();
                return;
            }

            case Op.Sret:
            {
                if (_s->Priv == PrivilegeMode.User || (_s->Priv == PrivilegeMode.Supervisor && (_s->Mstatus & Csr.StatusTsr) != 0))
                {
                    IllegalAt(pc);
                    return;
                }

                ulong mstatus = _s->Mstatus;
                var target = (mstatus & Csr.StatusSpp) != 0 ? PrivilegeMode.Supervisor : PrivilegeMode.User;
                mstatus = (mstatus & ~(Csr.StatusSie | Csr.StatusSpp | Csr.StatusMprv))
                    | ((mstatus & Csr.StatusSpie) != 0 ? Csr.StatusSie : 0)
                    | Csr.StatusSpie;
                _s->Mstatus = mstatus;
                _s->Priv = target;
                _s->Pc = _s->Sepc;
                _s->Instret++;
                UpdateTranslationContext();
                Kick();
                return;
            }

            case Op.Wfi:
                if (_s->Priv == PrivilegeMode.User || (_s->Priv == PrivilegeMode.Supervisor && (_s->Mstatus & Csr.StatusTw) != 0))
                {
                    IllegalAt(pc);
                    return;
                }

                _s->Pc = next;
                _s->Instret++;
                WaitForInterrupt();
                Kick();
                return;

            case Op.SfenceVma:
                if (_s->Priv == PrivilegeMode.User || (_s->Priv == PrivilegeMode.Supervisor && (_s->Mstatus & Csr.StatusTvm) != 0))
                {
                    IllegalAt(pc);
                    return;
                }

                // With an address (rs1 != x0) only that page's translations go; ASIDs are not kept.
                if (ins.Rs1 != 0)
                {
                    FlushTlbPage(_s->X[ins.Rs1]);
                }
                else
                {
                    FlushTlb();
                }

                _s->Pc = next;
                _s->Instret++;
                return;

            case Op.FenceI:
                // Stores into decoded code already dropped it (code pages are write-protected in the
                // TLB), so there is nothing stale to discard here.
                _s->Pc = next;
                _s->Instret++;
                return;

            default:
                Illegal(pc, (ulong)ins.Imm & (ins.Length == 2 ? 0xFFFFUL : 0xFFFF_FFFFUL));
                return;
        }
    }
}
