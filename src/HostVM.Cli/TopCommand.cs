using System.CommandLine;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>`hostvm top`: every VM's CPU, MIPS, memory, disk and network, refreshed in place until q or Ctrl-C.</summary>
public static class TopCommand
{
    public static Command Create(DaemonCommandRunner runner)
    {
        ArgumentNullException.ThrowIfNull(runner);
        var interval = new Option<double>("--interval") { Description = "Seconds between refreshes (default 2).", DefaultValueFactory = _ => 2 };
        var once = new Option<bool>("--once") { Description = "Print one frame and exit (for scripts and logs)." };
        var command = new Command("top", "Show all VMs live (CPU %, MIPS, memory, disk and network per second), busiest first; q or Ctrl-C quits.") { interval, once };
        runner.SetAction(command, async call =>
        {
            double seconds = call.Get(interval);
            if (seconds is < 0.5 or > 3600)
            {
                throw new UsageException($"--interval {seconds}: must be 0.5 to 3600 seconds.");
            }

            var period = TimeSpan.FromSeconds(seconds);
            var token = call.CancellationToken;
            if (call.Get(once))
            {
                return call.Print(await call.Client.GetHostStatsAsync(token).ConfigureAwait(false), (screen, host) => screen.Write(StatsView.TopFrame(host)));
            }

            if (call.Json || !call.Environment.OutputIsTerminal)
            {
                // Not a screen to redraw: a frame (or a JSON document) after another.
                while (true)
                {
                    call.Print(await call.Client.GetHostStatsAsync(token).ConfigureAwait(false), (screen, host) => screen.Write(StatsView.TopFrame(host)));
                    await Task.Delay(period, token).ConfigureAwait(false);
                }
            }

            var first = await call.Client.GetHostStatsAsync(token).ConfigureAwait(false);
            await call.Screen.Live(StatsView.TopFrame(first.Value)).AutoClear(false).StartAsync(async live =>
            {
                while (!await QuitPressedAsync(call.Environment.InputIsTerminal, period, token).ConfigureAwait(false))
                {
                    var host = await call.Client.GetHostStatsAsync(token).ConfigureAwait(false);
                    live.UpdateTarget(StatsView.TopFrame(host.Value));
                }
            }).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Waits <paramref name="period"/>, watching the keyboard; true as soon as q is pressed.</summary>
    private static async Task<bool> QuitPressedAsync(bool keyboard, TimeSpan period, CancellationToken token)
    {
        var until = DateTime.UtcNow + period;
        while (DateTime.UtcNow < until)
        {
            while (keyboard && Console.KeyAvailable)
            {
                if (Console.ReadKey(intercept: true).Key == ConsoleKey.Q)
                {
                    return true;
                }
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), token).ConfigureAwait(false);
        }

        return false;
    }
}
