using HostVM.Machine.Devices;
using HostVM.Networking;

namespace HostVM.Machine.Boot;

/// <summary>
/// Writes the device tree of a HostVM virt board: the same layout as QEMU's <c>virt</c> machine, limited
/// to the devices HostVM has (no PCI, flash, fw-cfg or platform bus).
/// </summary>
public static class VirtDeviceTree
{
    // Interrupt numbers on a hart's riscv,cpu-intc (the mip bit numbers).
    private const uint MachineSoftware = (uint)InterruptLine.MachineSoftware;
    private const uint MachineTimer = (uint)InterruptLine.MachineTimer;
    private const uint SupervisorExternal = (uint)InterruptLine.SupervisorExternal;
    private const uint MachineExternal = (uint)InterruptLine.MachineExternal;

    private const int RngSeedLength = 32;

    /// <summary>The largest hart count the PLIC layout leaves room for.</summary>
    public const int MaxHarts = Plic.MaxContexts / Plic.ContextsPerHart;

    public static byte[] Build(VirtBoardDescription board)
    {
        Validate(board);
        var fdt = new FdtWriter();
        var cpuPhandles = new uint[board.HartCount];
        var intcPhandles = new uint[board.HartCount];
        for (int hart = 0; hart < board.HartCount; hart++)
        {
            cpuPhandles[hart] = fdt.AllocatePhandle();
            intcPhandles[hart] = fdt.AllocatePhandle();
        }

        uint plicPhandle = fdt.AllocatePhandle();
        uint testPhandle = fdt.AllocatePhandle();

        fdt.BeginNode(string.Empty);
        fdt.Property("#address-cells", 2u);
        fdt.Property("#size-cells", 2u);
        fdt.Property("compatible", "riscv-virtio");
        fdt.Property("model", "riscv-virtio,qemu");

        WriteChosen(fdt, board);
        WriteMemory(fdt, board);
        WriteCpus(fdt, board, cpuPhandles, intcPhandles);
        WriteSoc(fdt, board, intcPhandles, plicPhandle, testPhandle);
        WriteSysconNode(fdt, "poweroff", "syscon-poweroff", PowerDevice.FinisherPass, testPhandle);
        WriteSysconNode(fdt, "reboot", "syscon-reboot", PowerDevice.FinisherReset, testPhandle);

        fdt.EndNode();
        return fdt.ToArray();
    }

    private static void Validate(VirtBoardDescription board)
    {
        ArgumentNullException.ThrowIfNull(board);
        if (board.HartCount < 1 || board.HartCount > MaxHarts)
        {
            throw new ArgumentOutOfRangeException(nameof(board), board.HartCount, $"A virt board has 1 to {MaxHarts} harts.");
        }

        if (board.RamSize == 0 || board.RamBase + board.RamSize < board.RamBase)
        {
            throw new ArgumentOutOfRangeException(nameof(board), $"RAM 0x{board.RamBase:x}+0x{board.RamSize:x} is empty or wraps around.");
        }

        if (board.InitrdStart.HasValue != board.InitrdEnd.HasValue || board.InitrdStart > board.InitrdEnd)
        {
            throw new ArgumentException("InitrdStart and InitrdEnd go together, with start <= end.", nameof(board));
        }

        if (!board.IsaString.StartsWith("rv64", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"riscv,isa \"{board.IsaString}\" does not describe an RV64 hart.", nameof(board));
        }

        var bases = new HashSet<ulong>();
        foreach (var slot in board.VirtioSlots)
        {
            if (slot.Irq <= 0 || slot.Irq >= Plic.DefaultSourceCount)
            {
                throw new ArgumentException(
                    $"virtio-mmio slot at 0x{slot.Base:x} has irq {slot.Irq}; PLIC sources are 1 to {Plic.DefaultSourceCount - 1}.", nameof(board));
            }

            if (!bases.Add(slot.Base))
            {
                throw new ArgumentException($"Two virtio-mmio slots are at 0x{slot.Base:x}; give each its own window.", nameof(board));
            }
        }
    }

    private static void WriteChosen(FdtWriter fdt, VirtBoardDescription board)
    {
        fdt.BeginNode("chosen");
        if (board.BootArgs is not null)
        {
            fdt.Property("bootargs", board.BootArgs);
        }

        fdt.Property("stdout-path", board.StdoutPath);
        if (board.InitrdStart is ulong start && board.InitrdEnd is ulong end)
        {
            fdt.Property("linux,initrd-start", start);
            fdt.Property("linux,initrd-end", end);
        }

        if (board.RngSeed is ReadOnlyMemory<byte> seed)
        {
            fdt.Property("rng-seed", seed.Span);
        }
        else
        {
            fdt.Property("rng-seed", KernelRandom.GetBytes(RngSeedLength));
        }

        fdt.EndNode();
    }

    private static void WriteMemory(FdtWriter fdt, VirtBoardDescription board)
    {
        fdt.BeginNode($"memory@{board.RamBase:x}");
        fdt.Property("device_type", "memory");
        fdt.Property("reg", FdtWriter.Cells64(board.RamBase, board.RamSize));
        fdt.EndNode();
    }

    private static void WriteCpus(FdtWriter fdt, VirtBoardDescription board, uint[] cpuPhandles, uint[] intcPhandles)
    {
        var (isaBase, isaExtensions) = RiscvIsaString.Split(board.IsaString);

        fdt.BeginNode("cpus");
        fdt.Property("#address-cells", 1u);
        fdt.Property("#size-cells", 0u);
        fdt.Property("timebase-frequency", board.TimebaseFrequency);

        for (int hart = 0; hart < board.HartCount; hart++)
        {
            fdt.BeginNode($"cpu@{hart:x}");
            fdt.Property("phandle", cpuPhandles[hart]);
            fdt.Property("device_type", "cpu");
            fdt.Property("reg", (uint)hart);
            fdt.Property("status", "okay");
            fdt.Property("compatible", "riscv");
            fdt.Property("riscv,isa", board.IsaString);
            fdt.Property("riscv,isa-base", isaBase);
            fdt.Property("riscv,isa-extensions", isaExtensions);
            fdt.Property("mmu-type", board.MmuType);

            fdt.BeginNode("interrupt-controller");
            fdt.Property("#address-cells", 0u);
            fdt.Property("#interrupt-cells", 1u);
            fdt.Property("interrupt-controller");
            fdt.Property("compatible", "riscv,cpu-intc");
            fdt.Property("phandle", intcPhandles[hart]);
            fdt.EndNode();

            fdt.EndNode();
        }

        fdt.BeginNode("cpu-map");
        fdt.BeginNode("cluster0");
        for (int hart = 0; hart < board.HartCount; hart++)
        {
            fdt.BeginNode($"core{hart}");
            fdt.Property("cpu", cpuPhandles[hart]);
            fdt.EndNode();
        }

        fdt.EndNode();
        fdt.EndNode();

        fdt.EndNode();
    }

    private static void WriteSoc(FdtWriter fdt, VirtBoardDescription board, uint[] intcPhandles, uint plicPhandle, uint testPhandle)
    {
        fdt.BeginNode("soc");
        fdt.Property("#address-cells", 2u);
        fdt.Property("#size-cells", 2u);
        fdt.Property("compatible", "simple-bus");
        fdt.Property("ranges");

        fdt.BeginNode($"clint@{Clint.DefaultBase:x}");
        fdt.Property("interrupts-extended", PerHart(intcPhandles, MachineSoftware, MachineTimer));
        fdt.Property("reg", FdtWriter.Cells64(Clint.DefaultBase, Clint.Size));
        fdt.Property("compatible", "sifive,clint0", "riscv,clint0");
        fdt.EndNode();

        fdt.BeginNode($"plic@{Plic.DefaultBase:x}");
        fdt.Property("phandle", plicPhandle);
        fdt.Property("riscv,ndev", (uint)(Plic.DefaultSourceCount - 1));
        fdt.Property("reg", FdtWriter.Cells64(Plic.DefaultBase, Plic.Size));
        fdt.Property("interrupts-extended", PerHart(intcPhandles, MachineExternal, SupervisorExternal));
        fdt.Property("interrupt-controller");
        fdt.Property("compatible", "sifive,plic-1.0.0", "riscv,plic0");
        fdt.Property("#address-cells", 0u);
        fdt.Property("#interrupt-cells", 1u);
        fdt.EndNode();

        fdt.BeginNode($"serial@{Uart16550.DefaultBase:x}");
        fdt.Property("interrupts", (uint)Uart16550.DefaultIrq);
        fdt.Property("interrupt-parent", plicPhandle);
        fdt.Property("clock-frequency", Uart16550.ClockFrequency);
        fdt.Property("reg", FdtWriter.Cells64(Uart16550.DefaultBase, Uart16550.Size));
        fdt.Property("compatible", "ns16550a");
        fdt.EndNode();

        fdt.BeginNode($"test@{PowerDevice.DefaultBase:x}");
        fdt.Property("phandle", testPhandle);
        fdt.Property("reg", FdtWriter.Cells64(PowerDevice.DefaultBase, PowerDevice.Size));
        fdt.Property("compatible", "sifive,test1", "sifive,test0", "syscon");
        fdt.EndNode();

        fdt.BeginNode($"rtc@{GoldfishRtc.DefaultBase:x}");
        fdt.Property("interrupts", (uint)GoldfishRtc.DefaultIrq);
        fdt.Property("interrupt-parent", plicPhandle);
        fdt.Property("reg", FdtWriter.Cells64(GoldfishRtc.DefaultBase, GoldfishRtc.Size));
        fdt.Property("compatible", "google,goldfish-rtc");
        fdt.EndNode();

        foreach (var slot in board.VirtioSlots)
        {
            fdt.BeginNode($"virtio_mmio@{slot.Base:x}");
            fdt.Property("interrupts", (uint)slot.Irq);
            fdt.Property("interrupt-parent", plicPhandle);
            fdt.Property("reg", FdtWriter.Cells64(slot.Base, VirtioMmioSlot.Size));
            fdt.Property("compatible", "virtio,mmio");
            fdt.EndNode();
        }

        fdt.EndNode();
    }

    private static void WriteSysconNode(FdtWriter fdt, string name, string compatible, uint value, uint regmap)
    {
        fdt.BeginNode(name);
        fdt.Property("value", value);
        fdt.Property("offset", (uint)PowerDevice.FinisherRegister);
        fdt.Property("regmap", regmap);
        fdt.Property("compatible", compatible);
        fdt.EndNode();
    }

    /// <summary>interrupts-extended cells: for each hart, (its intc, first) then (its intc, second).</summary>
    private static uint[] PerHart(uint[] intcPhandles, uint first, uint second)
    {
        var cells = new uint[intcPhandles.Length * 4];
        for (int hart = 0; hart < intcPhandles.Length; hart++)
        {
            cells[4 * hart] = intcPhandles[hart];
            cells[(4 * hart) + 1] = first;
            cells[(4 * hart) + 2] = intcPhandles[hart];
            cells[(4 * hart) + 3] = second;
        }

        return cells;
    }
}
