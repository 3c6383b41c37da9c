using HostVM.Machine.Devices;
using static HostVM.Machine.Devices.Uart16550;

namespace HostVM.Machine.Tests.Devices;

public class Uart16550Tests
{
    private readonly FakeInterruptController _irqs = new();
    private readonly List<byte> _sent = [];
    private readonly Uart16550 _uart;

    public Uart16550Tests()
    {
        _uart = new Uart16550(_irqs, 10, _sent.Add);
    }

    private byte Reg(ulong offset) => (byte)_uart.Read(offset, 1);

    private void Set(ulong offset, byte value) => _uart.Write(offset, 1, value);

    [Fact]
    public void Reset_state_has_empty_transmitter_and_no_interrupt()
    {
        Assert.Equal(LsrThrEmpty | LsrTransmitterEmpty, Reg(LsrRegister));
        Assert.Equal(IirNoInterrupt, Reg(IirFcr));
        Assert.Equal(0, Reg(IerDlm));
        Assert.False(_irqs[10]);
    }

    [Fact]
    public void Transmit_goes_to_output_at_once()
    {
        foreach (byte b in "Hi\n"u8)
        {
            Set(RbrThrDll, b);
        }

        Assert.Equal("Hi\n"u8.ToArray(), _sent);
        Assert.Equal(LsrThrEmpty | LsrTransmitterEmpty, Reg(LsrRegister) & (LsrThrEmpty | LsrTransmitterEmpty));
    }

    [Fact]
    public void Enabling_thre_interrupt_raises_it_and_reading_iir_clears_it()
    {
        Set(IerDlm, IerThrEmpty);

        Assert.True(_irqs[10]);
        Assert.Equal(IirThrEmpty, Reg(IirFcr));
        Assert.False(_irqs[10]);
        Assert.Equal(IirNoInterrupt, Reg(IirFcr));
    }

    [Fact]
    public void Writing_thr_raises_thre_again()
    {
        Set(IerDlm, IerThrEmpty);
        Assert.Equal(IirThrEmpty, Reg(IirFcr));

        Set(RbrThrDll, (byte)'x');
        Assert.True(_irqs[10]);
        Assert.Equal(IirThrEmpty, Reg(IirFcr));
    }

    [Fact]
    public void Re_enabling_etbei_raises_thre_again_as_linux_startup_test_expects()
    {
        Set(IerDlm, IerThrEmpty);
        Assert.Equal(IirThrEmpty, Reg(IirFcr));
        Set(IerDlm, 0);
        Set(IerDlm, IerThrEmpty);
        Assert.Equal(IirThrEmpty, Reg(IirFcr));
    }

    [Fact]
    public void Thre_without_etbei_does_not_interrupt()
    {
        Set(RbrThrDll, (byte)'x');
        Assert.False(_irqs[10]);
        Assert.Equal(IirNoInterrupt, Reg(IirFcr));
    }

    [Fact]
    public void Received_data_sets_dr_and_interrupts_when_enabled()
    {
        Assert.Equal(3, _uart.Receive("abc"u8));
        Assert.False(_irqs[10]); // ERBFI off
        Assert.Equal(LsrDataReady, Reg(LsrRegister) & LsrDataReady);

        Set(IerDlm, IerReceivedData);
        Assert.True(_irqs[10]);
        Assert.Equal(IirReceivedData, Reg(IirFcr));

        Assert.Equal((byte)'a', Reg(RbrThrDll));
        Assert.Equal((byte)'b', Reg(RbrThrDll));
        Assert.Equal((byte)'c', Reg(RbrThrDll));
        Assert.Equal(0, Reg(LsrRegister) & LsrDataReady);
        Assert.False(_irqs[10]);
        Assert.Equal(0, Reg(RbrThrDll)); // empty FIFO reads 0
    }

    [Fact]
    public void Received_data_outranks_thr_empty_which_outranks_modem_status()
    {
        Set(McrRegister, McrLoopback);
        Reg(MsrRegister); // clear deltas from entering loopback
        Set(IerDlm, IerReceivedData | IerThrEmpty | IerModemStatus);
        Set(McrRegister, McrLoopback | McrRts); // CTS changes: modem status delta
        _uart.Receive("z"u8);

        Assert.Equal(IirReceivedData, Reg(IirFcr));
        Reg(RbrThrDll);
        Assert.Equal(IirThrEmpty, Reg(IirFcr)); // reading it cleared THRE
        Assert.Equal(IirModemStatus, Reg(IirFcr));
        Assert.Equal(MsrCts | 0x01, Reg(MsrRegister)); // CTS + DCTS
        Assert.Equal(IirNoInterrupt, Reg(IirFcr));
        Assert.False(_irqs[10]);
    }

    [Fact]
    public void Reading_iir_reporting_rx_does_not_clear_pending_thre()
    {
        Set(IerDlm, IerReceivedData | IerThrEmpty);
        _uart.Receive("a"u8);
        Assert.Equal(IirReceivedData, Reg(IirFcr));
        Reg(RbrThrDll);
        Assert.Equal(IirThrEmpty, Reg(IirFcr));
    }

    [Fact]
    public void Receive_fifo_is_bounded_and_reports_how_many_were_accepted()
    {
        byte[] big = new byte[ReceiveBufferSize + 100];
        for (int i = 0; i < big.Length; i++)
        {
            big[i] = (byte)i;
        }

        Assert.Equal(ReceiveBufferSize, _uart.Receive(big));
        Assert.Equal(0, _uart.ReceiveSpace);
        Assert.Equal(0, _uart.Receive("more"u8));

        for (int i = 0; i < ReceiveBufferSize; i++)
        {
            Assert.Equal((byte)i, Reg(RbrThrDll));
        }

        Assert.Equal(ReceiveBufferSize, _uart.ReceiveSpace);
    }

    [Fact]
    public void Fifo_control_reports_fifo_bits_and_clears_receive_fifo()
    {
        _uart.Receive("abc"u8);
        Set(IirFcr, FcrEnableFifo);
        Assert.Equal(IirFifosEnabled | IirNoInterrupt, Reg(IirFcr));
        Assert.Equal(0, Reg(LsrRegister) & LsrDataReady); // enabling the FIFO reset it

        _uart.Receive("abc"u8);
        Set(IirFcr, FcrEnableFifo | FcrClearReceive);
        Assert.Equal(0, Reg(LsrRegister) & LsrDataReady);

        Set(IerDlm, IerThrEmpty);
        Assert.Equal(IirFifosEnabled | IirThrEmpty, Reg(IirFcr));

        Set(IirFcr, 0);
        Assert.Equal(IirNoInterrupt, Reg(IirFcr));
    }

    [Fact]
    public void Dlab_exposes_divisor_latch_instead_of_data_and_ier()
    {
        Set(IerDlm, IerReceivedData);
        Set(LcrRegister, LcrDlab | 0x03);
        Set(RbrThrDll, 0x01);
        Set(IerDlm, 0x02);

        Assert.Equal(0x01, Reg(RbrThrDll));
        Assert.Equal(0x02, Reg(IerDlm));
        Assert.Empty(_sent);

        Set(LcrRegister, 0x03);
        Assert.Equal(IerReceivedData, Reg(IerDlm));
        Assert.Equal(0x03, Reg(LcrRegister));

        Set(LcrRegister, LcrDlab);
        Assert.Equal(0x01, Reg(RbrThrDll));
        Assert.Equal(0x02, Reg(IerDlm));
    }

    [Fact]
    public void Scratch_register_holds_a_byte()
    {
        Set(ScrRegister, 0x5A);
        Assert.Equal(0x5A, Reg(ScrRegister));
    }

    [Fact]
    public void Ier_keeps_only_its_four_bits()
    {
        Set(IerDlm, 0xFF);
        Assert.Equal(0x0F, Reg(IerDlm));
    }

    [Fact]
    public void Modem_status_shows_a_connected_terminal_and_loopback_follows_mcr()
    {
        Assert.Equal(MsrDcd | MsrDsr | MsrCts, Reg(MsrRegister));

        Set(McrRegister, McrLoopback | McrDtr | McrRts | McrOut1 | McrOut2);
        Reg(MsrRegister);
        Assert.Equal(MsrDcd | MsrRi | MsrDsr | MsrCts, Reg(MsrRegister));

        Set(McrRegister, McrLoopback | McrOut2 | McrRts);
        Assert.Equal(MsrDcd | MsrCts | 0x02 | 0x04, Reg(MsrRegister)); // DDSR, TERI
    }

    [Fact]
    public void Loopback_sends_transmitted_bytes_to_the_receiver()
    {
        Set(McrRegister, McrLoopback);
        Set(RbrThrDll, (byte)'q');

        Assert.Empty(_sent);
        Assert.Equal(LsrDataReady, Reg(LsrRegister) & LsrDataReady);
        Assert.Equal((byte)'q', Reg(RbrThrDll));
    }

    [Fact]
    public void Interrupt_line_changes_are_sent_once()
    {
        Set(IerDlm, IerReceivedData);
        _uart.Receive("a"u8);
        _uart.Receive("b"u8);
        Reg(RbrThrDll);
        Reg(RbrThrDll);

        Assert.Equal([(10, true), (10, false)], _irqs.History);
    }

    [Fact]
    public void Unmapped_offsets_read_zero()
    {
        Assert.Equal(0UL, _uart.Read(8, 1));
        Assert.Equal(0UL, _uart.Read(0xFF, 1));
        _uart.Write(0x40, 1, 0x41);
        Assert.Empty(_sent);
    }

    [Fact]
    public void Restore_brings_back_registers_and_fifo()
    {
        Set(IerDlm, IerReceivedData);
        _uart.Receive("xy"u8);
        Reg(RbrThrDll);
        var saved = _uart.SaveState();

        var irqs = new FakeInterruptController();
        var other = new Uart16550(irqs, 10, _ => { });
        other.RestoreState(saved);

        Assert.True(irqs[10]);
        Assert.Equal((byte)'y', (byte)other.Read(RbrThrDll, 1));
        Assert.False(irqs[10]);
    }
}
